#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: system packages (as root), the course's Python environment, the book.
# Idempotent: run it again after pulling changes. SKIP_APT=1 skips the system packages (no root needed then).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

APT_PACKAGES=(
  python3-venv graphviz iproute2 util-linux procps     # venv, diagrams, network namespaces
  openssh-server openssh-client                        # exercise 3: the SSH tunnel
  slurm-wlm munge lmod                                 # the local test cluster
  slurmdbd mariadb-server                              # ... with accounting, as on JURECA-DC
  chromium chromium-driver fonts-dejavu-core           # the book, tested in a real browser
  strace                                               # bench: file opens of the data formats
)

install_system_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    echo "setup: system packages already installed"
    return
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [[ ${SKIP_APT:-0} == 1 ]]; then
  echo "setup: SKIP_APT=1, not installing system packages"
elif [[ $EUID -eq 0 ]]; then
  install_system_packages
else
  echo "setup: not root, skipping system packages (${APT_PACKAGES[*]}); tests that need them will skip" >&2
fi

# The system's Python where it is one (Debian: /usr/bin/python3), so that every user of the machine can run the
# environment: the tests run jobs and self-checks as a normal user, and root's own Python may be unreadable to them.
if [[ -z ${PYTHON:-} ]]; then
  PYTHON=python3
  usable='import sys, venv, ensurepip; sys.exit(sys.version_info[:2] < (3, 10))'  # ensurepip: python3-venv
  [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c "$usable" 2>/dev/null && PYTHON=/usr/bin/python3
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 10))'; then
  echo "setup: $PYTHON is older than Python 3.10; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt

# JURECA's software stage, as far as PyPI has it, in a tree of its own: Python 3.11, PyTorch 2.1.2, torchvision 0.16.2,
# NumPy 1.26 (the local cluster's module tree then offers PyTorch/2.1.2 and torchvision/0.16.2; a test runs the
# course on them). About 5 GB (torch 2.1.2 brings about 2.5 GB of NVIDIA wheels): only in CI or when asked for.
if [[ ${COURSE_STAGE_2024:-} == 1 || ${CI:-} == true ]]; then
  if [[ ! -f .venv-stage2024/complete ]]; then  # a build that stopped half-way is started again
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
      || { echo "setup: the stage tree needs Python 3.11 (Stages/2024); set PYTHON=/path/to/python3.11" >&2; exit 1; }
    echo "setup: building .venv-stage2024 (PyTorch 2.1.2, torchvision 0.16.2, NumPy 1.26.4: about 5 GB)"
    rm -rf .venv-stage2024
    "$PYTHON" -m venv .venv-stage2024
    .venv-stage2024/bin/python -m pip install -q torch==2.1.2 torchvision==0.16.2 numpy==1.26.4
    touch .venv-stage2024/complete
  fi
  echo "setup: stage tree .venv-stage2024 ready (the local cluster's start.sh adds its modules)"
fi

echo "setup: building the book (executes every lesson page on the CPU)"
.venv/bin/jupyter-book build . -W --keep-going
echo "setup: done. Open $(pwd)/_build/html/index.html in your browser."
