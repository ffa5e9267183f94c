# Packaging: the Helm chart (charts/kinfer), the daemonless OCI images, and the GitOps and
# observability files under docs/. Tools come from Go modules under test/cluster/tools/<name>,
# built once per version into $(KINFER_CACHE)/<name>-<version>/ and linked into build/cluster/bin.
#
#   make chart-crds       copy crds/*.yaml into charts/kinfer/crds/ and docs/observability/alerts.yaml
#                         into charts/kinfer/files/ (the chart's copies are never edited)
#   make chart            lint and package the chart into build/charts/kinfer-<version>.tgz
#   make images           OCI image layouts in build/images/<name>-oci/ (no container engine)
#   make test-packaging   chart lint/render/install, CRD drift, health checks, kstatus, images,
#                         alert rules (promtool)
#   make helm kstatus-eval promtool    just the tools

HELM_VERSION    := v3.22.0
HELM_K8S_MINOR  := 37
HELM_CACHED     := $(KINFER_CACHE)/helm-$(HELM_VERSION)/helm
HELM            := $(BUILD)/cluster/bin/helm
KSTATUS_VERSION := v0.37.2
# kstatus-eval is our own program: its key also covers its source.
KSTATUS_KEY     := $(KSTATUS_VERSION)-$(shell cat test/cluster/tools/kstatus/main.go test/cluster/tools/kstatus/go.sum 2>/dev/null | sha256sum | cut -c1-12)
KSTATUS_CACHED  := $(KINFER_CACHE)/kstatus-eval-$(KSTATUS_KEY)/kstatus-eval
KSTATUS         := $(BUILD)/cluster/bin/kstatus-eval
PROMTOOL_VERSION := v0.310.0
PROMTOOL_CACHED := $(KINFER_CACHE)/promtool-$(PROMTOOL_VERSION)/promtool
PROMTOOL        := $(BUILD)/cluster/bin/promtool
HELM_LDFLAGS    := -s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_K8S_MINOR) \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_K8S_MINOR)

# Cached binaries are keyed by version in their path and depend on nothing else, so a fresh checkout
# (newer file dates) reuses them; changing a version in go.mod means changing it here too.
$(HELM_CACHED):
	@mkdir -p $(@D)
	cd test/cluster/tools/helm && CGO_ENABLED=0 go build -trimpath -ldflags '$(HELM_LDFLAGS)' -o $@.tmp helm.sh/helm/v3/cmd/helm
	mv $@.tmp $@

$(KSTATUS_CACHED):
	@mkdir -p $(@D)
	cd test/cluster/tools/kstatus && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $@.tmp .
	mv $@.tmp $@

# remove_all_sd: rule checks need no service discovery, and some discovery plugins' dependencies are
# not on the module proxy.
$(PROMTOOL_CACHED):
	@mkdir -p $(@D)
	cd test/cluster/tools/promtool && CGO_ENABLED=0 go build -tags remove_all_sd -trimpath -ldflags '-s -w' -o $@.tmp github.com/prometheus/prometheus/cmd/promtool
	mv $@.tmp $@

$(PROMTOOL): $(PROMTOOL_CACHED)
	@mkdir -p $(@D)
	ln -sf $(abspath $<) $@

$(HELM): $(HELM_CACHED)
	@mkdir -p $(@D)
	ln -sf $(abspath $<) $@

$(KSTATUS): $(KSTATUS_CACHED)
	@mkdir -p $(@D)
	ln -sf $(abspath $<) $@

.PHONY: helm kstatus-eval promtool
helm: $(HELM)
kstatus-eval: $(KSTATUS)
promtool: $(PROMTOOL)

# The chart ships a copy of crds/ (Helm installs crds/ before templates and never deletes them).
# The copy is generated: edit crds/, then `make chart-crds`; test-packaging fails on any drift.
CHART_DIR        := charts/kinfer
# Always compares contents (never dates): a hand-edited copy newer than crds/ is overwritten too.
.PHONY: chart-crds
chart-crds:
	@mkdir -p $(CHART_DIR)/crds
	@for f in crds/*.yaml; do d=$(CHART_DIR)/crds/$${f##*/}; \
	  cmp -s "$$f" "$$d" || { cp "$$f" "$$d" && echo "chart-crds: updated $$d"; }; done
	@for f in $(CHART_DIR)/crds/*.yaml; do [ -e "crds/$${f##*/}" ] || { rm -f "$$f" && echo "chart-crds: removed stale $$f"; }; done
	@cmp -s docs/observability/alerts.yaml $(CHART_DIR)/files/alerts.yaml \
	  || { mkdir -p $(CHART_DIR)/files && cp docs/observability/alerts.yaml $(CHART_DIR)/files/alerts.yaml \
	       && echo "chart-crds: updated $(CHART_DIR)/files/alerts.yaml"; }

# Runs the controller's real status computation on the GitOps test cases (charts/tests/status-cases).
$(eval $(call c_program,test-status-dump,charts/tests/status_dump.c controller/src/reconcile/status.c controller/src/common/jsonx.c controller/src/common/error.c,-ljson-c))

# The chart as a package (what a chart repository or an OCI registry would hold).
.PHONY: chart
chart: $(HELM)
	@mkdir -p $(BUILD)/charts
	$(HELM) lint --strict $(CHART_DIR)
	$(HELM) package $(CHART_DIR) -d $(BUILD)/charts

# Container images without a container engine: OCI image layouts (load them with skopeo, podman,
# crane or `ctr image import` after `tar -C DIR -cf x.tar .`). Always built from release binaries,
# linked into $(BUILD)/bin-rel by a SANITIZE=0 sub-make, so a sanitizer build's build/bin is left
# alone. For the local cluster's real node: pause-oci, its sandbox image (test/cluster/node/pause.c,
# static), and curl-oci, Debian's curl for client pods in tests and the demo.
IMAGES_DIR := $(BUILD)/images
IMG_BIN    := $(BUILD)/bin-rel
.PHONY: images
images:
	@$(MAKE) --no-print-directory SANITIZE=0 BIN=$(IMG_BIN) -j$(NPROC) $(IMG_BIN)/kinfer-controller $(IMG_BIN)/kinfer-server $(IMG_BIN)/pause
	@for spec in "kinfer-controller $(IMG_BIN)/kinfer-controller --port 8080 --port 8081" \
	    "kinfer-server $(IMG_BIN)/kinfer-server --port 8080" "pause $(IMG_BIN)/pause" "curl /usr/bin/curl"; do \
	  set -- $$spec; i=$$1; b=$$2; shift 2; \
	  if [ ! -f $(IMAGES_DIR)/$$i-oci/index.json ] || [ $$b -nt $(IMAGES_DIR)/$$i-oci/index.json ] \
	     || [ scripts/oci-image.sh -nt $(IMAGES_DIR)/$$i-oci/index.json ]; then \
	    scripts/oci-image.sh image $$b $(IMAGES_DIR)/$$i-oci "$$@" >/dev/null || exit 1; \
	    read -r c u < <(scripts/oci-image.sh size $(IMAGES_DIR)/$$i-oci); \
	    awk -v i=$$i -v d=$(IMAGES_DIR)/$$i-oci -v c=$$c -v u=$$u \
	      'BEGIN { printf "images: %-18s %s  compressed %.2f MB, uncompressed %.2f MB\n", i, d, c / 1e6, u / 1e6 }'; \
	  fi; \
	done

$(BIN)/pause: test/cluster/node/pause.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $@ (static)")
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -static -s -o $@ $<

# The suite: pytest over charts/tests (chart, GitOps health, images, install on the local cluster).
# Images are always built from release binaries, also under SANITIZE=1.
TEST_SUITES += packaging
.PHONY: test-packaging
test-packaging: $(HELM) $(KSTATUS) $(PROMTOOL) $(BIN)/test-status-dump $(BIN)/kinfer-controller cluster-up
	@eval "$$(test/cluster/env.sh)" && venv=$$(scripts/pyenv.sh) && \
	  HELM=$(HELM) KSTATUS_EVAL=$(KSTATUS) PROMTOOL=$(PROMTOOL) STATUS_DUMP=$(BIN)/test-status-dump KUBECTL=$$(command -v kubectl) \
	  "$$venv/bin/python" -m pytest -p no:cacheprovider -v charts/tests
