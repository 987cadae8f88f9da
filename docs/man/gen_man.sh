#!/bin/sh
# gen_man.sh BIN TEMPLATE OUT -- writes the man page OUT from TEMPLATE,
# replacing each line "@help ARGS" with the output of "BIN ARGS" as a
# no-fill block (so the page says exactly what --help says) and
# @VERSION@ with BIN's version.
set -eu
bin=$1 template=$2 out=$3
version=$("$bin" --version | sed -n 's/^agentcube \([^ ]*\).*/\1/p')
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line; do
  case $line in
    @help\ *)
      # shellcheck disable=SC2086
      set -- ${line#@help }
      printf '.nf\n.ft CR\n'
      # troff: a backslash is \e; a line starting with . or ' needs \&
      "$bin" "$@" 2>&1 | sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
      printf '.ft R\n.fi\n'
      ;;
    *)
      printf '%s\n' "$line" | sed "s/@VERSION@/$version/g"
      ;;
  esac
done < "$template" > "$tmp"
mv "$tmp" "$out"
trap - EXIT
