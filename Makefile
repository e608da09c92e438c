# kubelab: one place for the commands the README and CI use.
# `make test` as root on a fresh Debian 12 machine installs everything and runs every test
# (as another user: `sudo make test`; nothing in here calls sudo). Each step prints one line.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
APT_PACKAGES = etcd-server etcd-client nftables iptables iproute2 conntrack dnsutils nginx-light curl \
               procps util-linux kmod python3-venv python3-pip graphviz
# the browser tests of `kubelab ui`: Debian's headless Chromium and its driver (no browser download)
TEST_PACKAGES = chromium chromium-driver
BENCH_PACKAGES = dnsperf dnsmasq-base iperf3
VM_PACKAGES = mmdebstrap qemu-system-x86 qemu-utils e2fsprogs apt-utils netcat-openbsd openssh-client vagrant

.PHONY: deps deps-test deps-vm install lab lint test test-host test-unit test-vm vm-image-background bench clean constraints

deps:  ## system packages (Debian/Ubuntu, as root)
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: needs root (as another user: sudo make $(or $(MAKECMDGOALS),deps))"; exit 1; fi
	@echo "== deps: apt-get update"
	@DEBIAN_FRONTEND=noninteractive apt-get update -qq
	@echo "== deps: apt-get install $(APT_PACKAGES)"
	@DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null

deps-test: deps  ## what the host suite adds: headless Chromium for the web view's browser tests
	@echo "== deps-test: apt-get install $(TEST_PACKAGES)"
	@DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(TEST_PACKAGES) >/dev/null

deps-vm: deps  ## what the VM suite adds: qemu, mmdebstrap, vagrant (for `vagrant validate`)
	@echo "== deps-vm: apt-get install $(VM_PACKAGES)"
	@DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(VM_PACKAGES) >/dev/null

# kubelab and its dependencies at the versions the suite ran with (constraints.txt, docs/install.md)
$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "kubelab needs Python >= 3.11 (Debian 12 has 3.11); " + sys.executable + " is " + sys.version.split()[0])'
	@echo "== venv: $(PYTHON) -m venv $(VENV) ($$($(PYTHON) -V))"
	@$(PYTHON) -m venv $(VENV)
	@echo "== venv: pip install --upgrade pip"
	@$(PY) -m pip install -q --upgrade pip
	@echo "== venv: pip install -c constraints.txt -e '.[test]' (kubelab + pinned dependencies; minutes the first time)"
	@$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	@touch $@

install: deps $(VENV)/.installed  ## kubelab into .venv, `kubelab` on the PATH
	@echo "== install: /usr/local/bin/kubelab -> $(abspath $(VENV))/bin/kubelab"
	@ln -sf $(abspath $(VENV))/bin/kubelab /usr/local/bin/kubelab

lab: install  ## a 3-node lab cluster on this host with the nginx demo
	@echo "== lab: kubelab up --demo"
	@kubelab up --demo

constraints:  ## re-pin constraints.txt: the newest versions pyproject.toml allows, in a fresh venv (then run the suite)
	@echo "== constraints: a fresh venv with the newest allowed versions"
	@rm -rf .venv-pin && $(PYTHON) -m venv .venv-pin && .venv-pin/bin/pip install -q --upgrade pip
	@.venv-pin/bin/pip install -q -e '.[test]'
	@echo "== constraints: pip freeze > constraints.txt"
	@{ head -3 constraints.txt; .venv-pin/bin/pip freeze --exclude-editable; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt && rm -rf .venv-pin

test: deps-vm install vm-image-background test-host test-vm  ## the whole suite (what CI runs): the host suite, then the VM suite

# The VM image (Debian packages + kubelab's dependencies, natively, minutes of CPU) is built
# while the host suite runs, which mostly waits; test-vm's build of the same image waits for
# this one (a lock per image key) instead of starting over. Nothing to do when it is cached.
VM_IMAGE_LOG ?= /var/tmp/kubelab-vm/image-build.log
vm-image-background: install deps-vm
	@mkdir -p $(dir $(VM_IMAGE_LOG))
	@echo "== vm-image: building the VM image in the background while the host suite runs (log: $(VM_IMAGE_LOG))"
	@nohup $(PY) tests/vm/vmlab.py image >$(VM_IMAGE_LOG) 2>&1 </dev/null &

# the host suite waits on labs, etcd and API servers far more than it computes: TEST_WORKERS pytest-xdist
# workers (a file or an xdist_group per worker; tests/conftest.py). TEST_WORKERS=0 runs it serially.
TEST_WORKERS ?= 3

test-host: install deps-test lint  ## unit, integration and lab e2e on real etcd/netns/nftables, in parallel; exit 5 (no tests) fails
	@echo "== test-host: pytest --ignore=tests/vm -n $(TEST_WORKERS) --dist loadgroup"
	@$(PY) -m pytest --ignore=tests/vm -n $(TEST_WORKERS) --dist loadgroup

lint: $(VENV)/.installed  ## ruff (pyflakes, pycodestyle errors, bugbear) and the import contracts (docs/architecture.md)
	@echo "== lint: ruff check; lint-imports (no component imports another)"
	@$(VENV)/bin/ruff check --quiet kubelab tests bench
	@$(VENV)/bin/lint-imports --no-cache >/dev/null || $(VENV)/bin/lint-imports --no-cache

test-unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

bench: install
	@echo "== bench: apt-get install $(BENCH_PACKAGES)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_PACKAGES) >/dev/null
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

test-vm: install deps-vm  ## Ansible onto 3 qemu VMs (image from Debian packages, TCG), then the e2e checks (~25 min)
	@echo "== test-vm: pytest tests/vm (Ansible's PLAY/TASK lines stream below; the full log's path is printed first)"
	KUBELAB_TEST_VM=1 PATH=$(abspath $(VENV))/bin:$$PATH $(PY) -m pytest tests/vm -v -s -rs

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
