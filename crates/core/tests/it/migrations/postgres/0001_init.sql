-- A test service's first migration (PostgreSQL dialect).
CREATE TABLE items (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
