# `sam build` runs `make build-<FunctionLogicalId>` here (samconfig.toml: build_in_source) with
# ARTIFACTS_DIR set; the function's code is the `onboard` binary, renamed bootstrap.
#
#   make lambda-bootstrap                              # the deployable binary: built in Amazon Linux 2 for
#                                                      # samconfig.toml's Architecture, glibc checked
#   ONBOARD_BINARY=.lambda-artifacts/bootstrap SQLITE_LIB=.lambda-artifacts/lib/libsqlite3.so.0 sam build
#   sam build                                          # release build on this machine (glibc <= 2.34 only)
#   ONBOARD_BINARY=.build/debug/onboard ARCHITECTURE=x86_64 sam build   # reuse a binary (CI; not deployed)
#
# A binary for provided.al2023 must be built where glibc is at most 2.34 (Amazon Linux 2 or
# 2023, as `lambda-bootstrap` does) or with the static Linux SDK; see README.md.

# The function's CPU architecture, arm64 or x86_64: ONE setting, `Architecture=` in
# samconfig.toml's parameter_overrides, which `sam deploy` passes to template.yaml and which the
# build here reads. Setting ARCHITECTURE overrides it for a build that is not deployed.
ARCHITECTURE ?= $(shell sed -n 's/^parameter_overrides *= *".*Architecture=\([A-Za-z0-9_]*\).*/\1/p' samconfig.toml | head -n 1)
HOST_ARCHITECTURE := $(subst aarch64,arm64,$(shell uname -m))
# Docker's name for it (linux/arm64 or linux/amd64), and the ELF e_machine a binary for it has.
DOCKER_PLATFORM = linux/$(if $(filter x86_64,$(ARCHITECTURE)),amd64,$(ARCHITECTURE))
ELF_MACHINE = $(if $(filter x86_64,$(ARCHITECTURE)),62,$(if $(filter arm64,$(ARCHITECTURE)),183,unknown))
# The newest glibc the bootstrap may need: provided.al2023's.
GLIBC_MAX ?= 2.34
AMAZON_LINUX_IMAGE ?= swift:6.2-amazonlinux2

SWIFT_BUILD_FLAGS ?= -c release --static-swift-stdlib
SWIFT_BUILD_DIR ?= .build-lambda

.PHONY: build-OnboardFunction build-OnboardFunctionWithCognito build-EventSweepFunction lambda-bootstrap print-architecture check-architecture

print-architecture:
	@echo "$(ARCHITECTURE)"

check-architecture:
ifeq ($(filter arm64 x86_64,$(ARCHITECTURE)),)
	$(error Architecture must be arm64 or x86_64 (samconfig.toml's parameter_overrides, or ARCHITECTURE=), not '$(ARCHITECTURE)')
endif

# The deployable binary in .lambda-artifacts/ (bootstrap and lib/libsqlite3.so.0): built in an
# Amazon Linux 2 container of the function's architecture (a native build on a host of that
# architecture; emulated, and slow, elsewhere), then checked against provided.al2023's glibc.
lambda-bootstrap: check-architecture
	mkdir -p .lambda-artifacts
	docker run --rm --platform "$(DOCKER_PLATFORM)" -v "$$PWD":/src -w /src "$(AMAZON_LINUX_IMAGE)" bash -c \
	  'yum install -y -q sqlite-devel make && make build-OnboardFunction ARTIFACTS_DIR=/src/.lambda-artifacts ARCHITECTURE=$(ARCHITECTURE)'
	scripts/check-glibc.sh .lambda-artifacts/bootstrap $(GLIBC_MAX)

# The event sweep function (template.yaml) is the same binary.
build-OnboardFunction build-OnboardFunctionWithCognito build-EventSweepFunction: check-architecture
ifdef ONBOARD_BINARY
	cp "$(ONBOARD_BINARY)" "$(ARTIFACTS_DIR)/bootstrap"
else
ifneq ($(HOST_ARCHITECTURE),$(ARCHITECTURE))
	$(error This machine builds for $(HOST_ARCHITECTURE) but the function's Architecture is $(ARCHITECTURE): run `make lambda-bootstrap`, or set Architecture=$(HOST_ARCHITECTURE) in samconfig.toml)
endif
	swift build $(SWIFT_BUILD_FLAGS) --scratch-path "$(SWIFT_BUILD_DIR)" --product onboard
	cp "$$(swift build $(SWIFT_BUILD_FLAGS) --scratch-path "$(SWIFT_BUILD_DIR)" --show-bin-path)/onboard" "$(ARTIFACTS_DIR)/bootstrap"
endif
	chmod 755 "$(ARTIFACTS_DIR)/bootstrap"
	@# A binary of another architecture would fail at every cold start ("exec format error"):
	@# compare the ELF header's e_machine (bytes 18-19, little-endian) with the Architecture.
	@machine=$$(od -An -tu2 -j18 -N2 "$(ARTIFACTS_DIR)/bootstrap" | tr -d ' '); \
	if [ "$$machine" != "$(ELF_MACHINE)" ]; then \
	  echo "the bootstrap is not an $(ARCHITECTURE) binary (ELF machine $$machine, expected $(ELF_MACHINE)): build it for the function's Architecture" >&2; \
	  exit 1; \
	fi
	# SQLite, which the binary links for its local store, is not part of provided.al2023:
	# it ships beside the binary (Lambda's LD_LIBRARY_PATH includes /var/task/lib).
	mkdir -p "$(ARTIFACTS_DIR)/lib"
	cp -L "$(if $(SQLITE_LIB),$(SQLITE_LIB),$$(ldd "$(ARTIFACTS_DIR)/bootstrap" | awk '/libsqlite3/ { print $$3 }'))" "$(ARTIFACTS_DIR)/lib/"
