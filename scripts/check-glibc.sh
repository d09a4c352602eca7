#!/usr/bin/env bash
# Checks that a Linux binary, and the shared libraries shipped beside it in lib/ (as the Lambda
# package has them), need no glibc newer than MAX: Lambda's provided.al2023 has glibc 2.34, and a
# binary linked against a newer glibc fails there at start-up ("GLIBC_2.35 not found").
#
#   scripts/check-glibc.sh BINARY [MAX]      # MAX defaults to 2.34 (Amazon Linux 2023)
#
# Prints the GLIBC_x.y versions each file needs (from `objdump -T`, its dynamic symbols) and
# exits 1 naming every symbol above MAX; 2 on a usage error or a missing file or tool.
set -euo pipefail

if (( $# < 1 || $# > 2 )); then
    echo "usage: $0 BINARY [MAX]  (MAX: the newest glibc allowed, default 2.34)" >&2
    exit 2
fi
binary=$1
max=${2:-2.34}
[[ $max =~ ^[0-9]+(\.[0-9]+)+$ ]] || { echo "check-glibc: MAX must look like 2.34, not '$max'" >&2; exit 2; }
[[ -f $binary ]] || { echo "check-glibc: no such file: $binary" >&2; exit 2; }
command -v objdump >/dev/null || { echo "check-glibc: objdump is missing (binutils)" >&2; exit 2; }

# Version a newer than version b?
newer() { [[ $1 != "$2" && $(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1) == "$1" ]]; }

files=("$binary")
lib_dir=$(dirname "$binary")/lib
if [[ -d $lib_dir ]]; then
    while IFS= read -r -d '' library; do files+=("$library"); done < <(find "$lib_dir" -maxdepth 1 -name '*.so*' -type f -print0 | sort -z)
fi

too_new=()
for file in "${files[@]}"; do
    # Undefined dynamic symbols (*UND*) are the ones this file needs from glibc; lines read
    # `0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.34) __libc_start_main`
    # (the version is in parentheses from binutils 2.35 on, bare before).
    table=$(objdump -T "$file" 2>/dev/null) || { echo "check-glibc: objdump cannot read $file (not an ELF file?)" >&2; exit 2; }
    needed=$(awk '/\*UND\*/ { for (i = 1; i < NF; i++) if ($i ~ /^\(?GLIBC_[0-9.]+\)?$/) { v = $i; gsub(/[()]/, "", v); sub(/^GLIBC_/, "", v); print v, $NF } }' <<<"$table" | sort -u)
    if [[ -z $needed ]]; then
        echo "$file: needs no versioned glibc symbol"
        continue
    fi
    highest=$(cut -d' ' -f1 <<<"$needed" | sort -V | tail -n 1)
    echo "$file: needs glibc $highest or newer (symbol versions: $(cut -d' ' -f1 <<<"$needed" | sort -uV | paste -sd ' '))"
    while read -r version symbol; do
        if newer "$version" "$max"; then too_new+=("$(basename "$file"): $symbol@GLIBC_$version"); fi
    done <<<"$needed"
done

if (( ${#too_new[@]} )); then
    echo "check-glibc: needs a glibc newer than $max; these symbols would not be found there:" >&2
    printf '  %s\n' "${too_new[@]}" >&2
    exit 1
fi
echo "check-glibc: every file runs on glibc $max"
