# Weir: a Kafka wire-protocol-compatible broker.
#
#   make help    this list (the default)
#   make setup   install system packages, the Python test venv and Kafka's jars (idempotent)
#   make deps    install only what building the broker needs, incl. the patched codec
#   make build   build the broker (release) and the test crates
#   make run     run a single broker: 127.0.0.1:9092, data in ./data
#   make cluster       start the three-node example cluster (config/cluster/): 9092-9094
#   make cluster-stop  stop it (a controlled shutdown of each node)
#   make test    setup + build + unit and protocol tests (Rust, kcat, Python, Java, Kafka's tools, Go, Node.js)
#   make test-rust / -python / -java / -go / -node   one part of make test, on what is built
#   make lint    cargo fmt --check and clippy with -D warnings
#   make bench   weir and Apache Kafka side by side, same clients and run (scripts/bench.sh)
#   make bench-groups  1,000-partition OffsetCommit and 10-member rebalance timings
#   make fuzz    every cargo-fuzz target for FUZZ_SECONDS (default 600) each; not in CI
#   make clean   remove build output and ./data

CARGO ?= cargo
PYTEST_ARGS ?=

.PHONY: help deps setup build run cluster cluster-stop test test-rust test-python test-java test-go test-node lint bench bench-groups fuzz clean

help:
	@sed -n '3,17p' Makefile | sed 's/^# \{0,1\}//'

deps:
	./scripts/setup.sh build

setup:
	./scripts/setup.sh

build: deps
	$(CARGO) build --release --workspace --all-targets

run: deps
	$(CARGO) run --release -p weir --bin weir

cluster: deps
	$(CARGO) build --release -p weir --bin weir
	CARGO_TARGET_DIR=$${CARGO_TARGET_DIR:-target} ./scripts/cluster.sh start

cluster-stop:
	CARGO_TARGET_DIR=$${CARGO_TARGET_DIR:-target} ./scripts/cluster.sh stop

test: setup build test-rust test-python test-java test-go test-node

test-rust:
	$(CARGO) test --release --workspace -- --test-threads=2

test-python:
	.venv/bin/python -m pytest -q protocol-tests/python $(PYTEST_ARGS)

test-java:
	mvn -q -B -Dstyle.color=never -f protocol-tests/java/pom.xml test
	mvn -q -B -Dstyle.color=never -f protocol-tests/java/pom.xml -P kafka-3.9 test

test-go:
	cd protocol-tests/go && go test -count=1 ./...

test-node:
	cd protocol-tests/node && npm test

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings

bench: setup build
	./scripts/bench.sh

bench-groups: build
	$(CARGO) run --release -q -p protocol-tests --example group_bench

fuzz:
	./scripts/fuzz.sh

clean:
	$(CARGO) clean
	rm -rf data
