# Infrastructure: offline validation, the ARM build and `make deploy`. Included by the root Makefile.
#
#   make infra-test   cfn-lint, sam validate --lint, checkov, the ARM build, the moto tests of tests/infra
#   make deploy VPC_ID=vpc-… SUBNETS=subnet-a,subnet-b AZS=us-east-1a,us-east-1b [REGION=…] [STACK=…] …
#
# Three venvs whose pins never meet: .venv (moto, tests), .venv-iac (aws-sam-cli, cfn-lint,
# cargo-lambda, zig) and .venv-checkov (checkov pins a boto3 that aws-sam-cli refuses).

VENV_CHECKOV := .venv-checkov
INFRA_TEMPLATES := infra/template.yaml infra/checker.yaml infra/nat-workflows.yaml infra/recovery.yaml
IAC_BIN := $(CURDIR)/$(VENV_IAC)/bin
ARM_TARGET := aarch64-unknown-linux-gnu
LAMBDA_BOOTSTRAP := target/lambda/connectivity-checker/bootstrap
# The managed NAT layer (infra/README.md, "Managed NAT instances").
INFRA_TEMPLATES += infra/nat.yaml infra/nat-az.yaml
# The housekeeping (Paused metric, canary routes; infra/README.md, "Housekeeping").
INFRA_TEMPLATES += infra/housekeeping.yaml
# The SAM CLI must not phone home from CI or from here.
export SAM_CLI_TELEMETRY := 0

.PHONY: venv-checkov infra-test infra-lint infra-validate infra-checkov infra-build infra-sam-build infra-pytest deploy

venv-checkov: $(VENV_CHECKOV)/.installed
$(VENV_CHECKOV)/.installed: requirements-checkov.txt
	$(PYTHON) -m venv $(VENV_CHECKOV)
	echo '*' > $(VENV_CHECKOV)/.gitignore
	$(VENV_CHECKOV)/bin/pip install -q --disable-pip-version-check -r requirements-checkov.txt
	touch $@

infra-test: infra-lint infra-validate infra-checkov infra-build infra-sam-build infra-pytest
	@echo "infra-test: passed"

infra-lint: venv-iac
	$(VENV_IAC)/bin/cfn-lint $(INFRA_TEMPLATES)

# --lint is cfn-lint through SAM; the plain run also performs the SAM transform locally (no AWS calls).
infra-validate: venv-iac
	@for t in $(INFRA_TEMPLATES); do \
	  $(VENV_IAC)/bin/sam validate --lint --region us-east-1 --template $$t || exit 1; \
	  AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline \
	    $(VENV_IAC)/bin/sam validate --region us-east-1 --template $$t || exit 1; \
	done

# Every skipped check carries its justification next to the resource (Metadata: checkov: skip: comment).
infra-checkov: venv-checkov
	$(VENV_CHECKOV)/bin/checkov --skip-download --directory infra --framework cloudformation --compact --quiet

# The deployed function is arm64. When the aarch64 std cannot be installed (no rustup, offline),
# build x86_64 so the build itself is still checked, and say so loudly.
infra-build: venv-iac
	@export PATH="$(IAC_BIN):$$PATH"; \
	if rustup target list --installed 2>/dev/null | grep -qx '$(ARM_TARGET)' \
	   || rustup target add $(ARM_TARGET) >/dev/null 2>&1; then \
	  arch=arm64; flag=--arm64; \
	else \
	  arch=x86_64; flag=--x86-64; \
	  echo "infra-build: NOTE: rust target $(ARM_TARGET) cannot be installed here; building x86_64 INSTEAD (the Lambda runs arm64)"; \
	fi; \
	start=$$(date +%s); \
	echo "infra-build: cargo lambda build --release $$flag"; \
	$(CARGO) lambda build --release $$flag --locked -p connectivity-checker || exit 1; \
	machine=$$(od -An -tx1 -j18 -N2 $(LAMBDA_BOOTSTRAP) | tr -d ' \n'); \
	case $$machine in b700) built=aarch64;; 3e00) built=x86_64;; *) built="unknown ($$machine)";; esac; \
	echo "infra-build: $(LAMBDA_BOOTSTRAP): ELF $$built, $$(stat -c %s $(LAMBDA_BOOTSTRAP)) bytes, $$(( $$(date +%s) - start )) s"; \
	if [ $$arch = arm64 ] && [ "$$built" != aarch64 ]; then echo "infra-build: expected an aarch64 binary"; exit 1; fi

# What `make deploy` builds: the nested templates and the function (built once for all subnets, by
# cargo-lambda, reusing infra-build's artifacts). Parameters only matter for conditions, not the build.
infra-sam-build: venv-iac infra-build
	PATH="$(IAC_BIN):$$PATH" $(VENV_IAC)/bin/sam build --template infra/template.yaml --beta-features
	@test -x .aws-sam/build/Checker1/Checker-Shared/bootstrap || test -n "$$(find .aws-sam/build -name bootstrap)"

# test_cost.py runs the debug binary (the metric budget of docs/COST.md); `build` is the one workspace
# build of the run (a -p subset could resolve features differently and compile again).
infra-pytest: venv build
	$(VENV)/bin/python -m pytest -q tests/infra

EXTRA_TESTS += infra-test

# ---------------------------------------------------------------------------------------- deploy
STACK  ?= nat-egress-watchdog
REGION ?= $(or $(AWS_REGION),$(AWS_DEFAULT_REGION))
CREATE_SFN_ENDPOINT ?= true
deploy: venv-iac
	@if [ -z "$(VPC_ID)" ] || [ -z "$(SUBNETS)" ] || [ -z "$(AZS)" ] || [ -z "$(REGION)" ]; then \
	  echo "usage: make deploy VPC_ID=vpc-… SUBNETS=subnet-a,subnet-b[,…] AZS=<az-of-a>,<az-of-b>[,…] REGION=…"; \
	  echo "       [STACK=$(STACK)] [ALARM_TOPIC_ARN=arn:aws:sns:…] [CREATE_SFN_ENDPOINT=true|false]"; \
	  echo "       [FALLBACK_NAT_GATEWAY_ID=nat-…] [CHECK_URLS=https://…,https://…] [EXTRA_PARAMS='Key=Value …']"; \
	  exit 2; fi
	@# Each subnet in VPC_ID and in the AZ beside it (name or id), the VPC CIDR for the endpoint, the
	@# pairs in AZ order: infra/preflight.py. Exit 2 with one line naming the problem.
	@$(VENV_IAC)/bin/python infra/preflight.py --vpc "$(VPC_ID)" --subnets "$(SUBNETS)" --azs "$(AZS)" \
	  --region "$(REGION)" > .deploy-params.tmp || { rm -f .deploy-params.tmp; exit 2; }
	@cat .deploy-params.tmp
	PATH="$(IAC_BIN):$$PATH" $(VENV_IAC)/bin/sam build --template infra/template.yaml --beta-features
	$(VENV_IAC)/bin/sam deploy --template-file .aws-sam/build/template.yaml --stack-name $(STACK) \
	  --region $(REGION) --resolve-s3 --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
	  --no-fail-on-empty-changeset \
	  --parameter-overrides VpcId=$(VPC_ID) $$(cat .deploy-params.tmp) \
	    CreateStepFunctionsEndpoint=$(CREATE_SFN_ENDPOINT) \
	    $(if $(ALARM_TOPIC_ARN),AlarmTopicArn=$(ALARM_TOPIC_ARN)) \
	    $(if $(FALLBACK_NAT_GATEWAY_ID),FallbackNatGatewayId=$(FALLBACK_NAT_GATEWAY_ID)) \
	    $(if $(CHECK_URLS),CheckUrls=$(CHECK_URLS)) $(EXTRA_PARAMS); \
	  rc=$$?; rm -f .deploy-params.tmp; exit $$rc

# ------------------------------------------------------------------------------ bench-failover
# The Failover path before/after the Parallel discovery, in moto -> docs/bench/failover-path.md
.PHONY: bench-failover
bench-failover: venv
	$(VENV)/bin/python tests/infra/bench_failover.py

# ------------------------------------------------------------------------------ cost
# The monthly bill per AZ and per VPC from the template's defaults and a real EMF run -> docs/COST.md
.PHONY: cost
cost: venv build-bin
	$(VENV)/bin/python tests/infra/cost.py --binary $(BIN_DEBUG)
