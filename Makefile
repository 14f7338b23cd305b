# vnet-xdp: BPF objects, their skeletons, the vnet-xdp loader, tests and the demo.
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
UNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR  ?= $(PREFIX)/share/man
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions

# `vnet-xdp --version`: git's description of the tree (after the fallback and the commit
# while there is no tag), or the fallback where there is no git (a tarball, a package build).
VERSION_FALLBACK := 0.1.0
VERSION ?= $(shell v=$$(git describe --tags --dirty 2>/dev/null) || \
	v=$$(git describe --always --dirty 2>/dev/null | sed 's/^/$(VERSION_FALLBACK)+g/'); \
	echo $${v:-$(VERSION_FALLBACK)})
# The Grafana dashboard and the Prometheus alert rules, for the operator to load.
DATADIR ?= $(PREFIX)/share/vnet-xdp

.DELETE_ON_ERROR: # a failed recipe (scdoc, clang) leaves no half-written target behind

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
ARCH_INCLUDE := /usr/include/$(shell $(CC) -dumpmachine)

CFLAGS  ?= -O2 -g
CFLAGS  += -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -std=gnu11 \
           -Iheaders -Iuser -I$(BUILD) -D_GNU_SOURCE
LDLIBS  += -lxdp -lbpf -ljansson -lmicrohttpd -lmnl -lsystemd -lelf -lz -lm -lpthread
BPF_CFLAGS := -O2 -g -Wall -target bpf -D__TARGET_ARCH_x86 -Iheaders -Ibpf -idirafter $(ARCH_INCLUDE)

# Sanitizer build of the user-space tests: make SANITIZE=1 test
ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
BUILD   := build-san
endif

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
SKELETONS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
BPF_HDRS  := $(wildcard bpf/*.h) $(wildcard headers/*.h)

# user/ by layer (docs/architecture.md): lib, config, import, compile, datapath, observe, cmd.
USER_DIRS := lib config import compile datapath observe cmd
USER_HDRS := $(foreach d,$(USER_DIRS),$(wildcard user/$(d)/*.h)) $(wildcard headers/*.h)
LIB_SRCS  := $(filter-out user/cmd/main.c,$(foreach d,$(USER_DIRS),$(wildcard user/$(d)/*.c)))
LIB_OBJS  := $(patsubst user/%.c,$(BUILD)/user/%.o,$(LIB_SRCS))
BIN       := $(BUILD)/vnet-xdp

UNIT_SRCS := $(wildcard tests/unit/test_*.c) $(wildcard tests/packet/test_*.c) $(wildcard tests/bpf/test_*.c)
UNIT_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TOOL_BINS := $(patsubst tests/tools/%.c,$(BUILD)/tests/tools/%,$(wildcard tests/tools/*.c))
BENCH_BIN := $(BUILD)/bench/vxbench

MAN_SRCS  := $(wildcard docs/man/*.scd)
MAN_PAGES := $(patsubst docs/man/%.scd,$(BUILD)/man/%,$(MAN_SRCS))

.PHONY: all man test demo install clean deps bench vm-prepare vm-test deb FORCE
.SECONDARY:

all: $(BIN) $(UNIT_BINS) $(TOOL_BINS) $(BENCH_BIN) man

man: $(MAN_PAGES)

$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(@D)
	scdoc < $< > $@

# Rewritten only when the version changes, so that only main.o is rebuilt then.
$(BUILD)/version.h: FORCE
	@mkdir -p $(@D)
	@echo '#define VNET_XDP_VERSION "$(VERSION)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@

$(BUILD)/user/cmd/main.o: $(BUILD)/version.h

deps:
	@scripts/install-deps.sh

$(BUILD)/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

$(BUILD)/user/%.o: user/%.c $(USER_HDRS) $(SKELETONS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(BIN): $(BUILD)/user/cmd/main.o $(LIB_OBJS)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(LIB_OBJS) $(wildcard tests/*.h tests/*/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests $< $(LIB_OBJS) -o $@ $(LDFLAGS) $(LDLIBS) -lcmocka

# The BPF tier (tests/bpf) loads the datapath's object when it runs.
$(filter $(BUILD)/tests/bpf/%,$(UNIT_BINS)): $(BPF_OBJS)

# Small tools the end-to-end tests run inside namespaces (traffic, slow clients, table fill).
$(BUILD)/tests/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(LDLIBS)

# The benchmark's traffic source and meters (scripts/bench/vxbench.c).
$(BUILD)/bench/vxbench.bpf.o: scripts/bench/vxbench.bpf.c
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bench/vxbench.skel.h: $(BUILD)/bench/vxbench.bpf.o
	$(BPFTOOL) gen skeleton $< name vxbench_bpf > $@

$(BENCH_BIN): scripts/bench/vxbench.c $(BUILD)/bench/vxbench.skel.h
	$(CC) $(CFLAGS) -I$(BUILD)/bench $< -o $@ $(LDFLAGS) -lbpf -lelf -lz

# The one test command of README.md: installs what it needs, builds, runs every suite.
test: deps
	$(MAKE) all
	BUILD=$(BUILD) tests/run.sh

# The QEMU guest (Debian's kernel, for ESP and xfrm interfaces) the vm suite runs in:
# downloaded and built once into build/vm/; `make vm-test` runs that suite alone.
vm-prepare:
	scripts/vm/prepare.sh >/dev/null

vm-test: all vm-prepare
	BUILD=$(BUILD) tests/run.sh vm

demo: deps
	$(MAKE) all
	scripts/demo.sh $(DEMO_ARGS)

bench: deps
	$(MAKE) all
	scripts/bench/run.sh

# The unit names the binary where this install puts it (PREFIX, not DESTDIR).
install: $(BIN) $(MAN_PAGES)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/sbin/vnet-xdp
	install -d $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(MAN_PAGES) $(DESTDIR)$(MANDIR)/man8/
	install -D -m 0644 scripts/completion/vnet-xdp $(DESTDIR)$(COMPLETIONDIR)/vnet-xdp
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g' scripts/systemd/vnet-xdp@.service.in \
		> $(DESTDIR)$(UNITDIR)/vnet-xdp@.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/vnet-xdp@.service
	install -D -m 0644 -t $(DESTDIR)$(DATADIR) dashboards/vnet-xdp.grafana.json \
		dashboards/vnet-xdp.rules.yml

# The Debian package, built from a clean copy of the tree (scripts/deb.sh), checked by
# lintian: $(BUILD)/deb/vnet-xdp_VERSION_amd64.deb.
deb: deps
	@changes=$$(scripts/deb.sh $(BUILD)/deb) && lintian --fail-on error,warning "$$changes" && \
		ls $(BUILD)/deb/*.deb

clean:
	rm -rf build build-san
