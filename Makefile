# Pantau: `make run` starts everything on embedded defaults; `make test` installs
# what the tests need (as root, from Debian's packages) and runs lint + tests.

CARGO       ?= cargo
CONFIG      ?= examples/pantau.yaml
DEB_PACKAGES = nats-server postgresql
export CARGO_TERM_COLOR ?= never

.PHONY: run build test k8s-monitoring-files fuzz-api deps-fuzz deps deps-kafka deps-smtp deps-snmpsim deps-deploy bench-gateway bench-notifier bench-alert-engine bench-collector bench-routers lint fmt clippy unit help bench-wan-detector soak-failover bench-system bench-grpc bench-console bench-memory-parts

help:
	@echo "make run    build release and start 'pantau all' with $(CONFIG)"
	@echo "make test   install test servers (as root), then fmt check, clippy, all tests"
	@echo "make lint   fmt check + clippy -D warnings"

build:
	$(CARGO) build --release --bin pantau

run: build
	@echo "pantau: the API needs a token; in another terminal: ./target/release/pantau --config $(CONFIG) token create --scope admin --ttl 1h"
	./target/release/pantau --config $(CONFIG) all

# Installs the real servers the tests start (nats-server, PostgreSQL,
# mosquitto, dovecot, …) when missing. As root it runs apt-get; otherwise it says what to install.
deps: deps-smtp deps-snmpsim deps-deploy deps-kafka
	@missing=""; \
	command -v nats-server >/dev/null 2>&1 || missing="$$missing nats-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing="$$missing dnsmasq-base"; \
	command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || missing="$$missing snmpd"; \
	{ command -v snmpbulkwalk >/dev/null 2>&1 && command -v snmpset >/dev/null 2>&1; } || missing="$$missing snmp"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing="$$missing mariadb-server"; \
	command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || missing="$$missing tinyproxy"; \
	command -v danted >/dev/null 2>&1 || [ -x /usr/sbin/danted ] || missing="$$missing dante-server"; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	[ -x /usr/lib/dovecot/imap-login ] || missing="$$missing dovecot-imapd"; \
	[ -x /usr/lib/dovecot/pop3-login ] || missing="$$missing dovecot-pop3d"; \
	command -v stunnel4 >/dev/null 2>&1 || [ -x /usr/bin/stunnel4 ] || missing="$$missing stunnel4"; \
	if [ -z "$$missing" ]; then echo "deps: test servers present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "deps: missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; exit 1; fi; \
	echo "deps: installing$$missing from Debian's packages"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 $$missing

# tansu (crates.io), the Kafka-protocol broker of the collector's Kafka tests
# (in-memory storage: the dynostore feature), into ~/.cargo/bin; skipped when
# present. It compiles for about 15 minutes on 2 cores the first time.
deps-kafka:
	@if command -v tansu >/dev/null 2>&1 || [ -x "$${CARGO_HOME:-$$HOME/.cargo}/bin/tansu" ]; then echo "deps: tansu present"; exit 0; fi; \
	echo "deps: installing tansu from crates.io (cargo install --locked tansu --features dynostore)"; \
	$(CARGO) install --locked tansu --features dynostore || { echo "deps: cannot install tansu from crates.io"; exit 1; }

# kubernetes-validate, check-jsonschema and openapi-spec-validator (PyPI), the
# offline validators of k8s/, docker-compose.yml and the gateway's OpenAPI
# document (crates/pantau/tests/deploy), in .venv-deploy.
deps-deploy:
	@if [ -x .venv-deploy/bin/kubernetes-validate ] && [ -x .venv-deploy/bin/check-jsonschema ] && [ -x .venv-deploy/bin/openapi-spec-validator ]; then echo "deps: kubernetes-validate, check-jsonschema, openapi-spec-validator present"; exit 0; fi; \
	echo "deps: installing kubernetes-validate, check-jsonschema and openapi-spec-validator into .venv-deploy"; \
	/usr/bin/python3 -m venv .venv-deploy || { echo "deps: cannot make a venv: install python3-venv (apt-get install python3-venv)"; exit 1; }; \
	.venv-deploy/bin/pip install -q kubernetes-validate check-jsonschema openapi-spec-validator || { echo "deps: cannot install kubernetes-validate, check-jsonschema, openapi-spec-validator from PyPI into .venv-deploy"; exit 1; }

# k8s/monitoring/files: copies of prometheus/, alertmanager/ and grafana/ (the
# files compose mounts), since kustomize loads nothing from outside k8s/monitoring.
# The deploy tests fail when a copy differs from its source.
k8s-monitoring-files:
	@d=k8s/monitoring/files; rm -rf $$d && mkdir -p $$d/prometheus/rules $$d/alertmanager \
	  $$d/grafana/provisioning/datasources $$d/grafana/provisioning/dashboards $$d/grafana/dashboards && \
	cp prometheus/prometheus-k8s.yml $$d/prometheus/prometheus.yml && \
	cp prometheus/rules/recording.yml prometheus/rules/alerts.yml $$d/prometheus/rules/ && \
	cp alertmanager/alertmanager.yml $$d/alertmanager/ && \
	cp grafana/provisioning/datasources/prometheus.yml $$d/grafana/provisioning/datasources/ && \
	cp grafana/provisioning/dashboards/pantau.yml $$d/grafana/provisioning/dashboards/ && \
	cp grafana/dashboards/*.json $$d/grafana/dashboards/ && \
	echo "k8s-monitoring-files: copied; list new dashboards in k8s/monitoring/kustomization.yaml"

# aiosmtpd (PyPI), the SMTP server of the notifier's email test and of the
# collector's mail checks (pantau_testkit::Smtp), in .venv-smtp
# made with Debian's python3; fails loudly when it cannot be installed.
deps-smtp:
	@if .venv-smtp/bin/python -c 'import aiosmtpd' 2>/dev/null; then echo "deps: aiosmtpd present"; exit 0; fi; \
	echo "deps: installing aiosmtpd into .venv-smtp"; \
	/usr/bin/python3 -m venv .venv-smtp || { echo "deps: cannot make a venv: install python3-venv (apt-get install python3-venv)"; exit 1; }; \
	.venv-smtp/bin/pip install -q aiosmtpd || { echo "deps: cannot install aiosmtpd from PyPI into .venv-smtp"; exit 1; }

# snmpsim (PyPI), the SNMP agent serving recorded device data (a MikroTik-like
# .snmprec under crates/testkit/data) to the collector's tests, in .venv-snmpsim
# made with Debian's python3 (as root snmpsim drops privileges to nobody, who
# cannot read pyenv's Python under /root). snmpsim 1.2.2 imports pysmi without
# declaring it, so pysmi is named too. Fails loudly when it cannot be installed.
deps-snmpsim:
	@if [ -x .venv-snmpsim/bin/snmpsim-command-responder ] && .venv-snmpsim/bin/python -c 'import snmpsim, pysmi' 2>/dev/null; then echo "deps: snmpsim present"; exit 0; fi; \
	echo "deps: installing snmpsim into .venv-snmpsim"; \
	/usr/bin/python3 -m venv .venv-snmpsim || { echo "deps: cannot make a venv: install python3-venv (apt-get install python3-venv)"; exit 1; }; \
	.venv-snmpsim/bin/pip install -q snmpsim pysmi || { echo "deps: cannot install snmpsim, pysmi from PyPI into .venv-snmpsim"; exit 1; }; \
	chmod -R a+rX .venv-snmpsim

# Deliveries per second and p50/p99 latency of the notifier (release build).
bench-notifier:
	$(CARGO) bench -p pantau-notifier --bench deliveries

# schemathesis (PyPI), the API fuzzer of `make fuzz-api`, in .venv-fuzz.
deps-fuzz:
	@if [ -x .venv-fuzz/bin/schemathesis ]; then echo "deps: schemathesis present"; exit 0; fi; \
	echo "deps: installing schemathesis into .venv-fuzz"; \
	/usr/bin/python3 -m venv .venv-fuzz || { echo "deps: cannot make a venv: install python3-venv (apt-get install python3-venv)"; exit 1; }; \
	.venv-fuzz/bin/pip install -q schemathesis || { echo "deps: cannot install schemathesis from PyPI into .venv-fuzz"; exit 1; }

# Property-based fuzzing of the REST API from its OpenAPI document against a
# real `pantau all`, with every schemathesis check: no 5xx, statuses and
# bodies as documented, valid input accepted and invalid refused, auth
# enforced (scripts/fuzz-api.sh; its exceptions in scripts/fuzz-api.toml).
# FUZZ_EXAMPLES (50) and FUZZ_SECONDS (300) bound the run. Not part of `make test`.
fuzz-api: deps-fuzz
	$(CARGO) build --bin pantau
	scripts/fuzz-api.sh

# Gateway: 10,000 WebSocket clients (in child processes) receiving 1,000
# events/s, publish-to-client p50/p99; and authenticated GET
# /api/v1/monitoring/alerts p50/p99 with a JWT and with an API key. The
# WebSocket half is the gateway crate's bench (it builds the gateway and core
# alone); the REST half needs the alert engine, so it is the binary's.
bench-gateway:
	$(CARGO) bench -p pantau-gateway --bench ws
	$(CARGO) bench -p pantau --bench gateway

# Alert engine: threshold-crossing CheckResult on the bus -> AlertEvent on the
# bus, p50/p99 (goal p99 < 50 ms), on the in-process bus and a real nats-server;
# then CPU per check result with the default rules at 1k, 10k and 100k targets
# (BENCH_SERIES=1000,10000,100000), which must stay flat.
bench-alert-engine:
	$(CARGO) bench -p pantau-alert-engine --bench latency
	$(CARGO) bench -p pantau-alert-engine --bench cost
	$(CARGO) bench -p pantau-alert-engine --bench outage

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --no-fail-fast

test: deps lint unit

# Benchmarks (not part of `make test`): each mode in its own process.
# Interfaces polled per second against a loopback snmpd (v2c, v3, several
# routers at once) beside snmpbulkwalk on the same agent, and over the
# RouterOS API and REST against the RouterOS simulator (release build;
# one half: cargo run --release -p pantau-collector --example bench_routers -- --mode routeros).
bench-routers:
	$(CARGO) run --release -p pantau-collector --example bench_routers

# WAN detector: judging latency per router for N routers x M interfaces
# (release build, in-process bus).
bench-wan-detector:
	$(CARGO) bench -p pantau-wan-detector --bench detect

# Multi-location failover soak: kills the primary of a three-instance cluster
# (separate processes, real nats-server) SOAK_ROUNDS times (default 50) at
# random moments, within SOAK_SECONDS (default 900); prints promotions,
# split-brain samples and lost results (both must be 0). Not part of `make test`.
soak-failover:
	$(CARGO) test -p pantau --test soak -- --nocapture

# The whole system as a user runs it (not part of `make test`): the release
# `pantau all` watching N HTTP targets (served by a child process) per N in
# BENCH_TARGETS (1000,10000,50000), default rules BENCH_RULES (on|off|both),
# every BENCH_INTERVAL (1s), measured over BENCH_SECONDS (20, at most 120):
# checks/s, CPU-s per 1,000 checks, RSS, schedule lag p99, WebSocket events/s,
# check-down -> webhook latency. BENCH_MODE=memory: RSS with 100,000 idle
# targets. BENCH_* come from the environment or the make command line.
# The web console with 10,000 targets (BENCH_TARGETS): the overview's first
# page (time, bytes) and a result on the bus to a headless Chromium's DOM.
bench-console:
	$(CARGO) build --release --bin pantau
	$(CARGO) bench -p pantau --bench console

# What each part of `pantau all` keeps per target: MEM_TARGETS (30,000) HTTP
# targets under heaptrack (the system-malloc build, profile `heap`), against
# nginx; one table of bytes per target by part. Needs heaptrack and nginx-light.
bench-memory-parts:
	$(CARGO) build --profile heap --bin pantau --no-default-features
	scripts/memory-parts.sh

bench-system:
	$(CARGO) build --release --bin pantau
	$(CARGO) bench -p pantau --bench system

# gRPC calls/s and p99 with and without TLS and the auth guard.
bench-grpc:
	$(CARGO) bench -p pantau-collector --bench grpc

bench-collector:
	$(CARGO) bench -p pantau-collector --bench collector -- --mode idle
	$(CARGO) bench -p pantau-collector --bench collector -- --mode tcp
	$(CARGO) bench -p pantau-collector --bench collector -- --mode http
	$(CARGO) bench -p pantau-collector --bench collector -- --mode http --new-connections
	$(CARGO) bench -p pantau-collector --bench collector -- --mode history
	$(CARGO) bench -p pantau-collector --bench collector -- --mode kafka
