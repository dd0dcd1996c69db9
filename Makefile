# Two commands for a fresh machine with Python 3.11:  `make book`  and  `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup data compiler browser tex slurm book site check-site pdf test bench clean

setup: $(VENV)/.installed

# Fashion-MNIST, the offline dataset of the deep-network chapter and its tests (Debian package)
data:
	@if [ ! -f $(FASHION_MNIST) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)); \
	  else \
	    echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist' (or use CIFAR-10 online)"; exit 1; \
	  fi; \
	fi

# g++ builds the activation's CPU kernel on first use (without it the slower PyTorch path runs, with a warning)
compiler:
	@if ! command -v g++ >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq g++ || (apt-get update -qq && apt-get install -y -qq g++)); \
	  else \
	    echo "warning: no g++: the activation runs on its slower PyTorch path (install g++ to fix)"; \
	  fi; \
	fi

# Chromium and its driver, for the real-browser check of the site (scripts/check_site.py); another
# Chromium-based browser and driver can be named with ACTFN_CHROMIUM and ACTFN_CHROMEDRIVER
ACTFN_CHROMIUM ?= /usr/bin/chromium
ACTFN_CHROMEDRIVER ?= /usr/bin/chromedriver
export ACTFN_CHROMIUM ACTFN_CHROMEDRIVER
browser:
	@if [ ! -x "$(ACTFN_CHROMIUM)" ] || [ ! -x "$(ACTFN_CHROMEDRIVER)" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq chromium chromium-driver || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)); \
	  else \
	    echo "Chromium is missing: run 'sudo apt-get install chromium chromium-driver' (the browser check needs it)"; exit 1; \
	  fi; \
	fi

# XeLaTeX, latexmk, the fonts Sphinx's LaTeX uses, and poppler's pdfinfo/pdftotext (Debian), for make pdf
TEX_PACKAGES := latexmk texlive-xetex texlive-latex-extra texlive-latex-recommended texlive-fonts-recommended \
                texlive-plain-generic fonts-freefont-otf poppler-utils
tex:
	@if ! command -v xelatex >/dev/null || ! command -v latexmk >/dev/null || ! command -v pdftotext >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq $(TEX_PACKAGES) || (apt-get update -qq && apt-get install -y -qq $(TEX_PACKAGES))); \
	  else \
	    echo "TeX is missing: run 'sudo apt-get install $(TEX_PACKAGES)' (make pdf needs it)"; exit 1; \
	  fi; \
	fi

# A one-node Slurm cluster (Debian's slurm-wlm and munge), for the sweep's real Slurm test; needs root
slurm:
	@if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq slurm-wlm munge || (apt-get update -qq && apt-get install -y -qq slurm-wlm munge)); \
	  else \
	    echo "Slurm is missing: the sweep's real Slurm test is skipped (root and 'apt-get install slurm-wlm munge' run it)"; exit 0; \
	  fi; \
	fi
	@if [ "$$(id -u)" = 0 ]; then bash scripts/slurm_one_node.sh; else echo "make slurm: the daemons need root; the real Slurm test is skipped"; fi

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install -r requirements.txt
	touch $@

book: setup data compiler   ## set up, then build the whole book into _build/html
	PATH="$(abspath $(BIN)):$$PATH" jupyter-book build book/

site: book   ## the built book as one archive, _build/site.tar.gz: unpack it anywhere and open html/index.html
	tar -czf _build/site.tar.gz -C _build html

pdf: setup data compiler tex   ## the whole book as one PDF, _build/latex/book.pdf (pages from the build's cache), then checked
	PATH="$(abspath $(BIN)):$$PATH" jupyter-book build book/ --builder pdflatex
	$(BIN)/python scripts/check_pdf.py _build/latex/book.pdf

check-site: setup browser   ## open every built page in headless Chromium at 1280 and 390 px; screenshots in _build/screenshots
	$(BIN)/python scripts/check_site.py _build/html --screenshots _build/screenshots

test: setup data compiler browser   ## set up, then run the test suite
	WANDB_MODE=disabled $(BIN)/python -m pytest

bench: setup compiler  ## every benchmark, one table -> results/benchmarks.json (BENCH_ARGS=--no-build: skip the builds)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

clean:
	rm -rf _build results runs
