# `sam build` runs `make build-<FunctionLogicalId>` here (samconfig.toml: build_in_source) with
# ARTIFACTS_DIR set; the function's code is the `onboard` binary, renamed bootstrap.
#
#   sam build                                          # release build for the Lambda (Linux)
#   ONBOARD_BINARY=.build/debug/onboard sam build      # reuse a binary already built (CI)
#   ONBOARD_BINARY=... SQLITE_LIB=... sam build        # both built elsewhere (the deploy workflow)
#
# A binary for provided.al2023 must be built where glibc is at most 2.34 (Amazon Linux 2 or
# 2023, as the deploy workflow does) or with the static Linux SDK; see README.md.

SWIFT_BUILD_FLAGS ?= -c release --static-swift-stdlib
SWIFT_BUILD_DIR ?= .build-lambda

.PHONY: build-OnboardFunction build-OnboardFunctionWithCognito

build-OnboardFunction build-OnboardFunctionWithCognito:
ifdef ONBOARD_BINARY
	cp "$(ONBOARD_BINARY)" "$(ARTIFACTS_DIR)/bootstrap"
else
	swift build $(SWIFT_BUILD_FLAGS) --scratch-path "$(SWIFT_BUILD_DIR)" --product onboard
	cp "$$(swift build $(SWIFT_BUILD_FLAGS) --scratch-path "$(SWIFT_BUILD_DIR)" --show-bin-path)/onboard" "$(ARTIFACTS_DIR)/bootstrap"
endif
	chmod 755 "$(ARTIFACTS_DIR)/bootstrap"
	# SQLite, which the binary links for its local store, is not part of provided.al2023:
	# it ships beside the binary (Lambda's LD_LIBRARY_PATH includes /var/task/lib).
	mkdir -p "$(ARTIFACTS_DIR)/lib"
	cp -L "$(if $(SQLITE_LIB),$(SQLITE_LIB),$$(ldd "$(ARTIFACTS_DIR)/bootstrap" | awk '/libsqlite3/ { print $$3 }'))" "$(ARTIFACTS_DIR)/lib/"
