# lra: Long Range Arena suite in C.
#   make            build build/lra (CPU backend; CUDA too when nvcc is found)
#   make test       install missing packages, build, run every CPU test
#   make run        install, build, run the built-in quick sweep and print its results table
#   make test-cuda  CUDA vs CPU parity tests (needs a GPU)
#   make deps       install missing Debian packages with apt-get
#   make ref        regenerate the PyTorch reference files under tests/ref/ (python3-torch)
#   make check-dump `lra dump` bundles of a few tasks checked against PyTorch (python3-torch)
# Knobs: CUDA=1 (require nvcc) NO_CUDA=1 NO_OMP=1 DEBUG=1 SAN=1 NATIVE=1
# Never -ffast-math: NaN/Inf detection and the reference numerics depend on IEEE semantics.

SHELL    := /bin/bash
ARCH     := $(shell $(CC) -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
BLAS_DIR := /usr/lib/$(ARCH)/openblas-openmp
BLAS_INC := /usr/include/$(ARCH)/openblas-openmp

# ---- build flavour -------------------------------------------------------------
BUILD    := build
OPT      := -O2
ifeq ($(DEBUG),1)
  OPT    := -O0 -g
endif
ifeq ($(SAN),1)
  BUILD  := build-san
  OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN  := -fsanitize=address,undefined
  NO_CUDA := 1
endif
ifeq ($(NATIVE),1)
  OPT    += -march=native
endif

CFLAGS   := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE $(OPT) -MMD -MP -I. -I$(BLAS_INC)
LDLIBS   := -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lfftw3f -lfftw3 -lyaml -lsqlite3 -lpng -lz -lpthread -lm

ifneq ($(NO_OMP),1)
  CFLAGS += -fopenmp
  LDLIBS += -fopenmp
  $(info ✓ OpenMP)
else
  CFLAGS += -Wno-unknown-pragmas
  $(info ✗ OpenMP (NO_OMP=1))
endif

# ---- CUDA (optional) ---------------------------------------------------------
NVCC       ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_HOME  := $(patsubst %/bin/nvcc,%,$(NVCC))
# nvcc alone is not enough: the runtime, cuBLAS and cuFFT must be there to link
CUDA_FOUND := $(and $(NVCC),$(wildcard $(CUDA_HOME)/lib64/libcudart.so),$(wildcard $(CUDA_HOME)/lib64/libcublas.so),$(wildcard $(CUDA_HOME)/lib64/libcufft.so),$(wildcard backends/cuda/*.cu))
ifeq ($(NO_CUDA),1)
  USE_CUDA :=
  $(info ✗ CUDA (NO_CUDA=1))
else ifneq ($(CUDA_FOUND),)
  USE_CUDA := 1
  $(info ✓ CUDA ($(NVCC)))
else ifeq ($(CUDA),1)
  $(error CUDA=1 but nvcc with libcudart, libcublas and libcufft was not found under $(or $(CUDA_HOME),PATH))
else
  USE_CUDA :=
  $(info ✗ CUDA ($(if $(NVCC),no libcudart/libcublas/libcufft under $(CUDA_HOME)/lib64,nvcc not found); the binary will explain that --backend cuda is unavailable))
endif
NVCCFLAGS  := -O2 -std=c++17 -I. -Xcompiler -Wall,-Wextra -MMD -MP \
              -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
CUDA_LIBS  := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublas -lcufft -lstdc++

# ---- sources -----------------------------------------------------------------------
# The numeric library: compiled twice, in float (what users run) and in
# double (the gradient-check build of the tests).
LIB_SRCS     := backends/core.c backends/backend.c backends/kv.c $(wildcard backends/cpu/*.c) $(wildcard models/*.c)
APP_SRCS     := $(wildcard harness/*.c) $(wildcard tasks/*.c)
CUDA_SRCS    := $(wildcard backends/cuda/*.cu)
TEST_SUPPORT := tests/t.c tests/check.c tests/mixer_check.c
TEST_SRCS    := $(filter-out $(TEST_SUPPORT) tests/test_cuda.c,$(wildcard tests/*.c))
TEST_NAMES   := $(basename $(notdir $(TEST_SRCS)))
# tests of the tasks and the harness run in the float build only
TEST64_NAMES := $(filter-out test_task% test_learn test_experiment,$(TEST_NAMES))

F32 := $(BUILD)/f32
F64 := $(BUILD)/f64
LIB32_OBJS  := $(LIB_SRCS:%.c=$(F32)/%.o)
LIB64_OBJS  := $(LIB_SRCS:%.c=$(F64)/%.o)
APP_OBJS    := $(APP_SRCS:%.c=$(F32)/%.o) $(F32)/harness/default_experiment.o
# tasks and harness without main(), linked into the float tests
HARNESS_OBJS := $(filter-out $(F32)/harness/main.o,$(APP_OBJS))
CUDA_OBJS   := $(if $(USE_CUDA),$(CUDA_SRCS:%.cu=$(F32)/%.o))
TESTS32     := $(TEST_NAMES:%=$(F32)/tests/%)
TESTS64     := $(TEST64_NAMES:%=$(F64)/tests/%)
ifdef USE_CUDA
  CFLAGS32  := $(CFLAGS) -DLRA_HAVE_CUDA
  LDLIBS32  := $(LDLIBS) $(CUDA_LIBS)
else
  CFLAGS32  := $(CFLAGS)
  LDLIBS32  := $(LDLIBS)
endif

.PHONY: all deps test test-sanitize test-cuda run ref check-dump clean
.SECONDARY:
all: deps $(BUILD)/lra $(TESTS32) $(TESTS64)

# ---- packages ------------------------------------------------------------------------
DEB_PKGS := libfftw3-dev libopenblas-dev libopenblas-openmp-dev libyaml-dev libsqlite3-dev libpng-dev sqlite3 gnuplot-nox
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing missing packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null \
	    || { echo "error: could not install:$$missing (run as root or with sudo)"; exit 1; }; \
	fi

# ---- build rules ----------------------------------------------------------------------
# Objects depend on a stamp of the flags, so switching CUDA/OMP on or off rebuilds them.
FLAGS_STAMP := $(BUILD)/flags.stamp
FLAGS_NOW   := $(CC) $(CFLAGS32) | $(NVCC) $(NVCCFLAGS) | $(USE_CUDA)
$(shell mkdir -p $(BUILD); echo '$(FLAGS_NOW)' | cmp -s - $(FLAGS_STAMP) || echo '$(FLAGS_NOW)' > $(FLAGS_STAMP))

# The commit and flags recorded with results (harness/buildinfo.c): only that
# object is rebuilt when they change (the stamp holds the last values).
GIT_COMMIT  := $(shell git rev-parse --short=12 HEAD 2>/dev/null)
GIT_COMMIT  := $(GIT_COMMIT)$(if $(GIT_COMMIT),$(shell git diff --quiet HEAD -- 2>/dev/null || echo -dirty))
BUILD_INFO  := $(CC) $(OPT)$(if $(filter 1,$(NO_OMP)),, -fopenmp)$(if $(USE_CUDA), cuda)
INFO_STAMP  := $(BUILD)/buildinfo.stamp
$(shell echo '$(GIT_COMMIT) $(BUILD_INFO)' | cmp -s - $(INFO_STAMP) || echo '$(GIT_COMMIT) $(BUILD_INFO)' > $(INFO_STAMP))
$(F32)/harness/buildinfo.o: $(INFO_STAMP)
# The sigmoid family's loops vectorise only where gcc may assume that float
# operations raise no trap it must keep (selects become blends, not branches);
# rounding, NaN and Inf are unchanged (this is not -ffast-math).
$(F32)/backends/cpu/cpu_activation.o: CFLAGS32 += -fno-trapping-math
$(F32)/harness/buildinfo.o: CFLAGS32 += -DLRA_GIT_COMMIT='"$(GIT_COMMIT)"' -DLRA_BUILD_FLAGS='"$(BUILD_INFO)"'

# V=1 shows the full commands
Q := $(if $(filter 1,$(V)),,@)

$(F32)/%.o: %.c $(FLAGS_STAMP) | deps
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS32) -c $< -o $@

$(F64)/%.o: %.c $(FLAGS_STAMP) | deps
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC64  $<")
	$(Q)$(CC) $(CFLAGS) -DLRA_F64 -c $< -o $@

$(F32)/%.o: %.cu $(FLAGS_STAMP) | deps
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC  $<")
	$(Q)$(NVCC) $(NVCCFLAGS) -c $< -o $@

# The built-in experiment (`lra sweep` without a file): the YAML as a C string.
$(F32)/harness/default_experiment.c: experiments/quick/default.yaml
	@mkdir -p $(dir $@)
	@{ echo '// generated by the Makefile from experiments/quick/default.yaml'; echo '#include "harness/run.h"'; \
	  echo 'const char lra_default_experiment[] ='; \
	  sed 's/\\/\\\\/g; s/"/\\"/g; s/^/    "/; s/$$/\\n"/' $<; echo '    "";'; } > $@
$(F32)/harness/default_experiment.o: $(F32)/harness/default_experiment.c $(FLAGS_STAMP)
	@$(if $(Q),echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS32) -c $< -o $@

$(BUILD)/lra: $(APP_OBJS) $(LIB32_OBJS) $(CUDA_OBJS)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(CC) $^ -o $@ $(LDSAN) $(LDLIBS32)

$(F32)/tests/%: $(F32)/tests/%.o $(TEST_SUPPORT:%.c=$(F32)/%.o) $(LIB32_OBJS) $(HARNESS_OBJS) $(CUDA_OBJS)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(CC) $^ -o $@ $(LDSAN) $(LDLIBS32)

$(F64)/tests/%: $(F64)/tests/%.o $(TEST_SUPPORT:%.c=$(F64)/%.o) $(LIB64_OBJS)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(CC) $^ -o $@ $(LDSAN) $(LDLIBS)

# ---- commands -----------------------------------------------------------------------
test: all
	@LRA=$(BUILD)/lra tests/run.sh $(TESTS32) $(TESTS64) tests/cli.sh tests/harness.sh tests/reports.sh

# allocator_may_return_null: the tests check that a huge allocation is refused with a message
test-sanitize:
	ASAN_OPTIONS=allocator_may_return_null=1 $(MAKE) SAN=1 test

ifdef USE_CUDA
$(F32)/tests/test_cuda: $(F32)/tests/test_cuda.o $(TEST_SUPPORT:%.c=$(F32)/%.o) $(LIB32_OBJS) $(CUDA_OBJS)
	@$(if $(Q),echo "  LINK  $@")
	$(Q)$(CC) $^ -o $@ $(LDLIBS32)
test-cuda: all $(F32)/tests/test_cuda
	@tests/run.sh $(F32)/tests/test_cuda
else
test-cuda:
	@echo "test-cuda: CUDA is not built (nvcc not found or NO_CUDA=1)"; exit 1
endif

# Regenerates the committed reference files under tests/ref/ with PyTorch
# (Debian python3-torch under /usr/bin/python3); the tests only read them.
ref:
	@/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "ref: needs python3-torch (apt install python3-torch)"; exit 1; }
	@for s in tests/ref/gen_*.py; do echo "  REF   $$s"; /usr/bin/python3 $$s tests/ref || exit 1; done

# Runs `lra dump` (one forward and backward pass, written as a bundle) on a
# few tasks and model configurations, then recomputes every bundle with an
# independent PyTorch model (tests/ref/check_bundle.py): logits and loss
# within 1e-4, gradients within 1e-3, BatchNorm running statistics of the
# training-mode dumps too; runs of a mixer this build lacks are skipped.
# Needs python3-torch; not part of `make test`.
DUMP_LISTOPS := --param min_length=20 --param max_length=60 --param seq_len=64
DUMP_SMALL   := --model d_model=16 --model n_layers=2
DUMP_NODROP  := --model dropout=0 --model input_dropout=0
define DUMP_RUNS
listops_attention      listops $(DUMP_LISTOPS) $(DUMP_SMALL) --model mixer=attention --model mixer.heads=2
listops_attention_bn   listops $(DUMP_LISTOPS) $(DUMP_SMALL) --model mixer=attention --model norm=batch --model prenorm=0 --model stage=glu --model pool=mean $(DUMP_NODROP) --mode train
listops_causal_last    listops $(DUMP_LISTOPS) $(DUMP_SMALL) --model mixer=attention --model mixer.causal=1 --model pool=last --model pos=learned --model stage=half_glu2 --model gelu=erf
retrieval_attention    retrieval --param seq_len=512 $(DUMP_SMALL) --model mixer=attention --model mixer.heads=2
retrieval_nli_train    retrieval --param seq_len=512 $(DUMP_SMALL) --model mixer=attention --model combine=nli --model norm=scale --model stage=half_glu1 --model pool=mean $(DUMP_NODROP) --mode train
image_scalar_attention image --param input=scalar $(DUMP_SMALL) --model mixer=attention --model n_layers=1
pathfinder_mean_all    pathfinder --param input=scalar $(DUMP_SMALL) --model mixer=attention --model n_layers=1 --model pool=mean_all --model d_ffn=0 --model stage=gelu
listops_s4d            listops $(DUMP_LISTOPS) $(DUMP_SMALL) --model mixer=s4d --model mixer.d_state=16
image_s4d_train        image --param input=scalar $(DUMP_SMALL) --model mixer=s4d --model mixer.d_state=8 --model mixer.disc=bilinear --mode train
retrieval_s4d_bidir    retrieval --param seq_len=512 $(DUMP_SMALL) --model mixer=s4d --model mixer.bidirectional=1 --model mixer.n_ssm=1
listops_s4             listops $(DUMP_LISTOPS) $(DUMP_SMALL) --model mixer=s4 --model mixer.d_state=16
pathfinder_s4_train    pathfinder --param input=scalar $(DUMP_SMALL) --model mixer=s4 --model mixer.d_state=8 --model mixer.bidirectional=1 --model prenorm=0 --mode train
listops_lru_train      listops $(DUMP_LISTOPS) $(DUMP_SMALL) --model mixer=lru --model mixer.d_state=16 --model mixer.r_min=0.5 --mode train
retrieval_lru_bidir    retrieval --param seq_len=512 $(DUMP_SMALL) --model mixer=lru --model mixer.d_state=8 --model mixer.bidirectional=1
listops_hyena          listops $(DUMP_LISTOPS) $(DUMP_SMALL) --model mixer=hyena --model mixer.filter_order=8
image_hyena_train      image --param input=scalar $(DUMP_SMALL) --model mixer=hyena --model mixer.filter_order=8 --model mixer.bidirectional=1 --model mixer.order=3 --mode train
listops_s5             listops $(DUMP_LISTOPS) $(DUMP_SMALL) --model mixer=s5 --model mixer.ssm_size=16 --model mixer.blocks=2
image_s5_train         image --param input=scalar $(DUMP_SMALL) --model mixer=s5 --model mixer.ssm_size=8 --model mixer.blocks=2 --model mixer.bidirectional=1 --model mixer.disc=bilinear --mode train
listops_mega           listops $(DUMP_LISTOPS) $(DUMP_SMALL) --model mixer=mega --model mixer.z_dim=8
image_mega_train       image --param input=scalar $(DUMP_SMALL) --model mixer=mega --model mixer.attn=laplace --model mixer.chunk=256 --model norm=batch --model prenorm=1 --model mixer.z_dim=8 $(DUMP_NODROP) --mode train
endef
export DUMP_RUNS
check-dump: $(BUILD)/lra
	@/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "check-dump: needs python3-torch (apt install python3-torch)"; exit 1; }
	@d=$$(mktemp -d /tmp/lra_check_dump_XXXXXX); rc=0; \
	while read -r name args; do \
	  [ -n "$$name" ] || continue; \
	  if msg=$$($(BUILD)/lra dump $$args --out $$d/$$name.safetensors 2>&1 >/dev/null); then echo "  DUMP  $$name"; \
	  elif grep -q "unknown mixer" <<< "$$msg"; then echo "  SKIP  $$name: $${msg##*model.mixer: }"; \
	  else echo "$$msg"; rc=1; break; fi; \
	done <<< "$$DUMP_RUNS"; \
	[ $$rc -eq 0 ] && { /usr/bin/python3 tests/ref/check_bundle.py --fresh $$d/*.safetensors || rc=$$?; }; \
	rm -rf $$d; exit $$rc

run: deps $(BUILD)/lra
	$(BUILD)/lra sweep

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
