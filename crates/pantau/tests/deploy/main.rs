//! The deployment and observability files (prometheus/, alertmanager/,
//! grafana/, docker-compose.yml, deploy/, k8s/) checked by the real tools:
//! promtool, amtool, a real Prometheus scraping a real `pantau all`,
//! `kubectl kustomize` and `kubernetes-validate --strict`. A missing tool
//! fails the test naming the package that provides it.

mod alertmanager;
mod compose;
mod grafana;
mod k8s;
mod prometheus;
mod scrape;
mod support;
