#!/usr/bin/env bash
# Install what tinygrad_cnn needs: Debian's graphviz (to render graphs),
# dataset-fashion-mnist (the real data, else a small embedded subset is used) and
# chromium (headless, for the tests of the backprop page; they skip without it),
# then the package itself, editable, with its dev extras. Safe to run again:
# packages already present are not fetched twice.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEBIAN_PACKAGES=(graphviz dataset-fashion-mnist chromium)

apt_prefix=()
apt_usable=false
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt_usable=true
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        apt_prefix=(sudo -n)
        apt_usable=true
    fi
fi

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: Debian packages already installed: ${DEBIAN_PACKAGES[*]}"
elif [ "$apt_usable" = true ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { "${apt_prefix[@]}" apt-get update -qq && "${apt_prefix[@]}" apt-get install -y -qq "${missing[@]}"; }; then
        echo "setup: WARNING: apt-get could not install ${missing[*]}; graph rendering needs graphviz," \
             "without the dataset the embedded Fashion-MNIST subset is used, and without chromium" \
             "the browser tests of the backprop page are skipped" >&2
    fi
else
    echo "setup: skipping Debian packages (${missing[*]}): apt-get needs root or passwordless sudo." \
         "Install them yourself for graph rendering, the full Fashion-MNIST data and the browser tests."
fi

echo "setup: python3 -m pip install -e '.[dev]'"
python3 -m pip install -q --root-user-action=ignore -e '.[dev]'
