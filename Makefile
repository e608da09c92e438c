# kubelab: one place for the commands the README and CI use.
# `sudo make test` on a fresh Debian/Ubuntu machine installs everything and runs every test.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
APT_PACKAGES = etcd-server etcd-client nftables iptables iproute2 conntrack dnsutils nginx-light curl \
               procps util-linux kmod python3-venv python3-pip graphviz
# the browser tests of `kubelab ui`: Debian's headless Chromium and its driver (no browser download)
TEST_PACKAGES = chromium chromium-driver
BENCH_PACKAGES = dnsperf dnsmasq-base iperf3
VM_PACKAGES = mmdebstrap qemu-system-x86 qemu-utils e2fsprogs apt-utils netcat-openbsd openssh-client vagrant

.PHONY: deps deps-test deps-vm install lab test test-host test-unit test-vm bench clean

deps:  ## system packages (Debian/Ubuntu, as root)
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root (sudo make ...)"; exit 1; fi
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null

deps-test: deps  ## what the host suite adds: headless Chromium for the web view's browser tests
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_PACKAGES) >/dev/null

deps-vm: deps  ## what the VM suite adds: qemu, mmdebstrap, vagrant (for `vagrant validate`)
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(VM_PACKAGES) >/dev/null

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: deps $(VENV)/.installed  ## kubelab into .venv, `kubelab` on the PATH
	ln -sf $(abspath $(VENV))/bin/kubelab /usr/local/bin/kubelab

lab: install  ## a 3-node lab cluster on this host with the nginx demo
	kubelab up --demo

test: deps-vm test-host test-vm  ## the whole suite (what CI runs): the host suite, then the VM suite

test-host: install deps-test  ## unit, integration and lab e2e on real etcd/netns/nftables (~8 min); exit 5 (no tests) fails
	$(PY) -m pytest --ignore=tests/vm

test-unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

bench: install
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_PACKAGES) >/dev/null
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

test-vm: install deps-vm  ## Ansible onto 3 qemu VMs (image from Debian packages, TCG), then the e2e checks (~25 min)
	KUBELAB_TEST_VM=1 PATH=$(abspath $(VENV))/bin:$$PATH $(PY) -m pytest tests/vm -v -s -rs

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
