#!/usr/bin/env bash
# Prints the Debian packages that own every shared library BINARY loads, one per line, without
# those every Debian image has (libc6, libgcc-s1, libstdc++6). The Dockerfile's runtime stage
# installs exactly these. usrmerge: dpkg may know a library by its /lib or its /usr/lib path, so
# both are asked.
#   scripts/runtime-packages.sh BINARY
set -euo pipefail
binary=${1:?binary}
for p in $(ldd "$binary" | awk '/=> \//{print $3}'); do
  r=$(realpath "$p")
  for c in "$p" "$r" "/usr$p" "${p#/usr}" "/usr$r" "${r#/usr}"; do
    o=$(dpkg -S "$c" 2>/dev/null | head -1 | cut -d: -f1 || true)
    if [[ -n $o ]]; then
      echo "$o"
      break
    fi
  done
done | sort -u | grep -v -E '^(libc6|libgcc-s1|libstdc\+\+6)$'
