#!/usr/bin/env bash
# Private apt: run apt-get / apt-cache against our own sources, lists and cache
# under a build directory, so that the host's apt state (/etc/apt, /var/lib/apt,
# /var/cache/apt) is never changed. Used to download (never install) packages of
# other suites: sid's Linux 7.2 for arm64, bookworm-backports' qemu 10.
#
# Usage (as a command):
#   private-apt.sh DIR SUITES ARCHES apt-get|apt-cache ARGS...
#     DIR     state directory (created), e.g. build/apt/sid
#     SUITES  space-separated suites of the machine's own Debian mirror, e.g. "sid"
#             or "bookworm-backports"
#     ARCHES  space-separated architectures, e.g. "amd64 arm64"
#   The first apt call in DIR runs `apt-get update` (again when the sources change or
#   when PRIVATE_APT_UPDATE=1). Example:
#     tools/lib/private-apt.sh build/apt/sid sid "amd64 arm64" apt-get download linux-source-7.2
#   (apt-get download writes into the current directory.)
# Or sourced: `. tools/lib/private-apt.sh` defines private_apt_mirror and private_apt.
#
# The mirror URI is read from the machine's own sources (deb822 *.sources in
# /etc/apt/sources.list.d, or one-line sources.list): the first URI ending in
# /debian; suites named *-security use the URI ending in /debian-security. No host
# name is hard-coded. PRIVATE_APT_MIRROR / PRIVATE_APT_SECURITY_MIRROR override them. The keyring is /usr/share/keyrings/debian-archive-keyring.gpg
# (PRIVATE_APT_KEYRING overrides it).

private_apt_mirror() {  # [debian|debian-security]
    local archive=${1:-debian}
    if [ "$archive" = debian ] && [ -n "${PRIVATE_APT_MIRROR:-}" ]; then
        echo "$PRIVATE_APT_MIRROR"; return
    fi
    if [ "$archive" = debian-security ] && [ -n "${PRIVATE_APT_SECURITY_MIRROR:-}" ]; then
        echo "$PRIVATE_APT_SECURITY_MIRROR"; return
    fi
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822 stanzas: a "URIs:" line of Types deb, not a security archive
        uri=$(awk -v want="$archive" 'BEGIN{RS=""; FS="\n"}
                   /(^|\n)Types:[^\n]*deb([ \t\n]|$)/ {
                     for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) {
                       n = split(substr($i, 6), u, /[ \t]+/)
                       for (j = 1; j <= n; j++) if (u[j] ~ ("/" want "/?$")) { print u[j]; exit }
                     }
                   }' "$f")
        if [ -n "$uri" ]; then echo "${uri%/}"; return; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk -v want="$archive" '$1 == "deb" {
                     for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) {
                       if ($i ~ ("/" want "/?$")) { print $i; exit } else break } }' "$f")
        if [ -n "$uri" ]; then echo "${uri%/}"; return; fi
    done
    echo "private-apt: no $archive archive found in /etc/apt/sources.list{,.d}" >&2
    return 1
}

# private_apt DIR SUITES ARCHES apt-get|apt-cache ARGS...
private_apt() {
    local dir=$1 suites=$2 arches=$3 tool=$4
    shift 4
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    mkdir -p "$dir/etc/sources.list.d" "$dir/etc/preferences.d" "$dir/lists/partial" \
        "$dir/cache/archives/partial"
    local keyring sources="" s plain="" security=""
    keyring=${PRIVATE_APT_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
    for s in $suites; do
        case "$s" in *-security) security="$security $s" ;; *) plain="$plain $s" ;; esac
    done
    # one stanza per archive: "*-security" suites live in the debian-security archive
    local archive list
    for archive in debian debian-security; do
        list=$plain; [ "$archive" = debian-security ] && list=$security
        [ -n "$list" ] || continue
        sources="${sources:+$sources
}Types: deb
URIs: $(private_apt_mirror "$archive")
Suites:${list}
Components: main
Architectures: $arches
Signed-By: $keyring
"
    done
    printf '%s' "$sources" > "$dir/etc/private.sources.new"
    if cmp -s "$dir/etc/private.sources.new" "$dir/etc/private.sources"; then
        rm -f "$dir/etc/private.sources.new"
    else
        mv "$dir/etc/private.sources.new" "$dir/etc/private.sources"
        rm -f "$dir/.updated"
    fi
    : > "$dir/status"
    local opts=(
        -o "Dir::Etc::SourceList=$dir/etc/private.sources"   # deb822 file as the main list
        -o "Dir::Etc::SourceParts=$dir/etc/sources.list.d"   # empty: not the host's
        -o "Dir::Etc::Preferences=$dir/etc/preferences"
        -o "Dir::Etc::PreferencesParts=$dir/etc/preferences.d"
        -o "Dir::State::Lists=$dir/lists"
        -o "Dir::State::status=$dir/status"                 # nothing installed: pure download
        -o "Dir::Cache=$dir/cache"
        -o "Debug::NoLocking=1"
        -o "APT::Architecture=$(dpkg --print-architecture)"
    )
    local a
    opts+=(-o "APT::Architectures=")
    for a in $arches; do opts+=(-o "APT::Architectures::=$a"); done
    # deb822 in Dir::Etc::SourceList needs the .sources name: apt decides by extension
    ln -sf private.sources "$dir/etc/private-list.sources"
    opts[1]="Dir::Etc::SourceList=$dir/etc/private-list.sources"
    if [ ! -e "$dir/.updated" ] || [ -n "${PRIVATE_APT_UPDATE:-}" ]; then
        apt-get "${opts[@]}" -q update >&2 || return 1
        touch "$dir/.updated"
    fi
    "$tool" "${opts[@]}" "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    if [ $# -lt 4 ]; then
        sed -n '2,24p' "$0" >&2
        exit 2
    fi
    private_apt "$@"
fi
