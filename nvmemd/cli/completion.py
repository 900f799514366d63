"""Shell completion for ``nvmemd-query``, generated from its argparse parser.

``python3 -m nvmemd.cli.completion bash|zsh|fish`` prints the script; the
Debian package builds them at build time (debian/rules), so subcommands,
options and choices always match :func:`nvmemd.cli.main.build_parser`.
Provider and cell names come from the running system: the scripts call
``nvmemd-query providers --names`` / ``cells [P] --names`` (errors silenced),
passing on ``--sysroot``, ``--config``, ``--direct``, ``--address`` and
``--session`` from the command line being completed, before or after the
subcommand (unquoted, a leading ``~`` expanded as the shell will). After
``--provider P`` the cells are P's; after ``--consumer``/``--netdev`` they are
the consumer's ``nvmem-cell-names``, read from the device tree under the
sysroot when it can be found there (a path or a label; else all cells).

bash needs no bash-completion helpers: it rejoins the words readline split at
COMP_WORDBREAKS characters (``--opt=VALUE``, ``PROVIDER:NAME``) from COMP_LINE
and lets readline quote names and directories (``-o filenames``).
tests/test_completion.py presses Tab in the real shells.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from .main import build_parser

PROG = "nvmemd-query"
#: What a value is, by option or positional dest: names from the system, files.
VALUE_KINDS: dict[str, str] = {
    "--sysroot": "dir", "--config": "file", "--provider": "providers",
    "--netdev": "netdevs", "output": "file", "provider": "providers", "spec": "cells",
}
#: Options passed on to the ``--names`` calls (they choose the system and the bus).
PASSED_ON = ("--sysroot", "--config", "--direct", "--address", "--session")


@dataclass
class Option:
    names: list[str]
    help: str
    takes_value: bool
    choices: list[str] | None = None
    kind: str | None = None


@dataclass
class Command:
    name: str
    help: str
    options: list[Option] = field(default_factory=list)
    positional: str | None = None  # the kind of its positional arguments, if any
    most: int | None = 1  # how many it takes at most (None: any number)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text).strip()


def _short_help(action: argparse.Action) -> str:
    """The help of *action* up to its first parenthesis, colon or semicolon."""
    text = argparse.HelpFormatter(PROG)._expand_help(action) if action.help else ""
    return _printable(text.split(" (")[0].split(": ")[0].split("; ")[0])


def sh_quote(text: str) -> str:
    """*text* as one single-quoted bash or zsh word."""
    return "'" + text.replace("'", "'\\''") + "'"


def fish_quote(text: str) -> str:
    """*text* as one single-quoted fish word."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _options(parser: argparse.ArgumentParser) -> list[Option]:
    out = []
    for a in parser._actions:
        if not a.option_strings or a.help == argparse.SUPPRESS:
            continue
        choices = [str(c) for c in a.choices] if a.choices else None
        long = next((o for o in a.option_strings if o.startswith("--")), a.option_strings[0])
        out.append(Option(list(a.option_strings), _short_help(a), a.nargs != 0, choices,
                          VALUE_KINDS.get(long)))
    return out


def model(parser: argparse.ArgumentParser | None = None) -> tuple[list[Option], list[Command]]:
    """The top-level options and the subcommands of *parser* (default: nvmemd-query's)."""
    parser = parser or build_parser()
    commands = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            helps = {c.dest: c.help or "" for c in a._choices_actions}
            for name, sub in a.choices.items():
                positionals = [p for p in sub._actions if not p.option_strings]
                kinds = [VALUE_KINDS.get(p.dest) for p in positionals]
                most = (None if any(p.nargs in ("*", "+") for p in positionals)
                        else sum(p.nargs if isinstance(p.nargs, int) else 1
                                 for p in positionals))
                commands.append(Command(name, helps.get(name, ""), _options(sub),
                                        next((k for k in kinds if k), None), most))
    return _options(parser), commands


# --- bash ---------------------------------------------------------------------------

#: The parts of the bash script that do not depend on the parser. It needs no helper
#: of the bash-completion package (which may not be installed).
_BASH_HELPERS = r"""
# Is $1 made only of COMP_WORDBREAKS characters that split a shell word without
# ending it (= : @; not blanks, quotes or shell operators)?
_nvmemd_query_isbreak() {
    local w=$1 brk=${COMP_WORDBREAKS//[$' \t\n\'"<>;|&()']/}
    [[ -n $w ]] || return 1
    while [[ -n $w ]]; do
        [[ $brk == *"${w:0:1}"* ]] || return 1
        w=${w:1}
    done
}

# The words as the shell will see them: COMP_WORDS joined again where readline split
# a word at such a character (--format=mac, --sysroot=DIR, PROVIDER:NAME). Sets words
# and cword; cur: the word up to the cursor; keep: the part of cur before readline's
# own word, the part a completion replaces.
_nvmemd_query_words() {
    local line=${COMP_LINE:0:COMP_POINT} w prev=
    local -i i p=0 blank
    words=() cword=-1
    for ((i = 0; i <= COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        blank=0
        while [[ ${line:p:1} == [$' \t\n'] ]]; do p+=1 blank=1; done
        if ((i == COMP_CWORD)); then
            w=${line:p}
        elif [[ ${line:p:${#w}} != "$w" ]]; then  # not where expected: as readline split
            words=("${COMP_WORDS[@]:0:COMP_CWORD+1}") cword=$COMP_CWORD
            cur=${COMP_WORDS[COMP_CWORD]} keep=
            return
        fi
        if ((i > 0 && !blank)) &&
            { _nvmemd_query_isbreak "$w" || _nvmemd_query_isbreak "$prev"; }; then
            words[cword]+=$w
        else
            words[++cword]=$w
        fi
        p+=${#w} prev=$w
    done
    cur=${words[cword]}
    if _nvmemd_query_isbreak "$w"; then keep=$cur; else keep=${cur:0:${#cur}-${#w}}; fi
}

# REPLY: the word $1 as typed, as the command will see it (quotes and backslashes
# removed; an unclosed quote runs to the end, as in the word being completed).
_nvmemd_query_dequote() {
    local w=$1 c q=
    REPLY=
    while [[ -n $w ]]; do
        c=${w:0:1} w=${w:1}
        if [[ $q == "'" ]]; then
            if [[ $c == "'" ]]; then q=; else REPLY+=$c; fi
        elif [[ $q == '"' ]]; then
            if [[ $c == '"' ]]; then q=
            elif [[ $c == '\' && $w == [\"\\\$\`]* ]]; then REPLY+=${w:0:1} w=${w:1}
            else REPLY+=$c; fi
        elif [[ $c == [\'\"] ]]; then q=$c
        elif [[ $c == '\' ]]; then REPLY+=${w:0:1} w=${w:1}
        else REPLY+=$c; fi
    done
}

# REPLY: the value word $1 as the command will see it: unquoted, and a leading ~ or
# ~user expanded (the shell does, but not after --opt=)
_nvmemd_query_value() {
    _nvmemd_query_dequote "$1"
    if [[ $1 == '~'* ]]; then
        local user=${1%%/*} home=
        user=${user#'~'}
        if [[ -z $user ]]; then home=$HOME
        elif [[ $user =~ ^[A-Za-z0-9._][A-Za-z0-9._-]*$ ]]; then eval "home=~$user"; fi
        [[ -n $home && $home != '~'* ]] && REPLY=$home${REPLY#"~$user"}
    fi
}

# Offer $pre$w for each word w (the arguments) that starts with $val.
_nvmemd_query_add() {
    local w
    for w; do [[ $w == "$val"* ]] && cands+=("$pre$w"); done
}

# Network interfaces (sys/class/net under the sysroot).
_nvmemd_query_netdevs() {
    local f root=${sysroot:-${NVMEMD_SYSROOT:-/}}
    local -a names=()
    for f in "${root%/}"/sys/class/net/*; do [[ -e $f ]] && names+=("${f##*/}"); done
    _nvmemd_query_add "${names[@]}"
}

# Files (-f) or directories (-d) whose names start with $val: readline quotes them
# and ends a directory with a / (-o filenames).
_nvmemd_query_files() {
    local -a found
    compopt -o filenames 2>/dev/null
    mapfile -t found < <(compgen "$1" -- "$val")
    _nvmemd_query_add "${found[@]}"
}

# names: what DT consumer --consumer NODE (a path or label) or --netdev IF calls its
# cells (nvmem-cell-names), read from the device tree under the sysroot; fails when
# it cannot be read there (a node path without unit addresses, say).
_nvmemd_query_consumer_names() {
    local root=${sysroot:-${NVMEMD_SYSROOT:-/}} base node label
    root=${root%/}
    if [[ -n $netdev ]]; then
        [[ $netdev != */* ]] || return 1
        for node in "$root/sys/class/net/$netdev"/{,device/}of_node; do
            [[ -r $node/nvmem-cell-names ]] && break
        done
    else
        for base in "$root/sys/firmware/devicetree/base" "$root/proc/device-tree"; do
            [[ -d $base ]] && break
        done
        node=$consumer
        if [[ $node != /* ]]; then  # a label: __symbols__ has its path
            label=${node#&}
            [[ $label =~ ^[A-Za-z_][A-Za-z0-9_]*$ && -r $base/__symbols__/$label ]] || return 1
            { IFS= read -r -d '' node || [[ -n $node ]]; } < "$base/__symbols__/$label"
        fi
        node=$base/${node#/}
    fi
    [[ -r $node/nvmem-cell-names ]] || return 1
    mapfile -t -d '' names < "$node/nvmem-cell-names"
}

# Names from the system: $1 providers or cells (nvmemd-query … --names), with the
# options that choose the system and the bus ($passed) from the line; cells: those
# of --provider P, or the names of --consumer/--netdev.
_nvmemd_query_names() {
    local -a names
    if [[ $1 == cells && -n $consumer$netdev ]] && _nvmemd_query_consumer_names; then
        :
    elif [[ $1 == cells && -n $provider ]]; then
        mapfile -t names < <(nvmemd-query "${passed[@]}" cells "$provider" --names 2>/dev/null)
    else
        mapfile -t names < <(nvmemd-query "${passed[@]}" "$1" --names 2>/dev/null)
    fi
    _nvmemd_query_add "${names[@]}"
    # a name with a blank or a quote (U-Boot variables), or a word typed in quotes:
    # readline's filename quoting quotes the name (without it, no listing by basename)
    local w
    for w in "${cands[@]}" "$cur"; do
        if [[ $w == *[!A-Za-z0-9_./:@%+,=#-]* ]]; then
            compopt -o filenames 2>/dev/null
            break
        fi
    done
}
"""


def _bash_action(o: Option | None, kind: str | None) -> str:
    """The bash code that offers the values of option *o* (or a positional of *kind*)."""
    if o is not None and o.choices:
        return "_nvmemd_query_add " + " ".join(o.choices)
    if kind == "dir":
        return "_nvmemd_query_files -d"
    if kind == "file":
        return "_nvmemd_query_files -f"
    if kind in ("providers", "cells"):
        return f"_nvmemd_query_names {kind}"
    if kind == "netdevs":
        return "_nvmemd_query_netdevs"
    return ":"


def bash(parser: argparse.ArgumentParser | None = None) -> str:
    top, commands = model(parser)
    unique: dict[str, Option] = {}
    for o in top + [o for c in commands for o in c.options]:
        unique.setdefault(o.names[0], o)
    valued = sorted({n for o in unique.values() if o.takes_value for n in o.names})
    passed_valued = "|".join(n for n in PASSED_ON if unique[n].takes_value)
    passed_flags = "|".join(n for n in PASSED_ON if not unique[n].takes_value)
    out = [
        f"# bash completion for {PROG}: generated from its argparse parser by",
        "# `python3 -m nvmemd.cli.completion bash`; do not edit.",
        _BASH_HELPERS,
        "_nvmemd_query() {",
        "    local words cword cur keep pre= val opt= i w v cmd=",
        "    local sysroot= provider= consumer= netdev=",
        "    local -a passed=() cands=()",
        "    local -i npos=0",
        "    _nvmemd_query_words",
        "    # what the words before this one say: the subcommand, how many arguments it has,",
        "    # the options that choose the system and the bus, --provider/--consumer/--netdev",
        "    for ((i = 1; i < cword; i++)); do",
        '        w=${words[i]} v=',
        '        case $w in',
        '            --*=*) _nvmemd_query_dequote "${w#*=}"; w=${w%%=*} v=$REPLY ;;',
        f"            {'|'.join(valued)}) _nvmemd_query_value \"${{words[++i]}}\"; v=$REPLY ;;",
        "            -*) ;;",
        '            *) if [[ -z $cmd ]]; then cmd=$w; else npos+=1; fi ;;',
        "        esac",
        '        case $w in',
        f'            {passed_valued}) passed+=("$w=$v") ;;&',
        f'            {passed_flags}) passed+=("$w") ;;',
        '            --sysroot) sysroot=$v ;;',
    ]
    for name in ("--provider", "--consumer", "--netdev"):
        if name in unique:
            out.append(f"            {name}) {name[2:]}=$v ;;")
    out += [
        "        esac",
        "    done",
        "    # the value of an option: --opt=VALUE, or after --opt",
        '    if [[ $cur == --*=* ]]; then',
        '        opt=${cur%%=*} pre=${cur%%=*}= val=${cur#*=}',
        "    else",
        "        val=$cur",
        "        ((cword > 1)) &&",
        '        case ${words[cword-1]} in',
        f"            {'|'.join(valued)}) opt=${{words[cword-1]}} ;;",
        "        esac",
        "    fi",
        '    _nvmemd_query_dequote "$val"; val=$REPLY',
        '    _nvmemd_query_dequote "$keep"; keep=$REPLY',
        '    if [[ -n $opt ]]; then',
        '        case $opt in',
    ]
    for o in unique.values():
        if o.takes_value:
            out.append(f"            {'|'.join(o.names)}) {_bash_action(o, o.kind)} ;;")
    out += [
        "        esac",
        '    elif [[ $cur == -* ]]; then',
        '        case $cmd in',
    ]
    for c in commands:
        words = " ".join(n for o in c.options for n in o.names if n.startswith("--"))
        out.append(f"            {c.name}) _nvmemd_query_add {words} ;;")
    top_words = " ".join(n for o in top for n in o.names if n.startswith("--"))
    out += [
        f"            *) _nvmemd_query_add {top_words} ;;",
        "        esac",
        "    else",
        '        case $cmd in',
        f'            "") _nvmemd_query_add {" ".join(c.name for c in commands)} ;;',
    ]
    for c in commands:
        if c.positional:
            action = _bash_action(None, c.positional)
            if c.most is not None:
                action = f"((npos < {c.most})) && {action}"
            out.append(f"            {c.name}) {action} ;;")
    out += [
        "        esac",
        "    fi",
        "    # readline replaces only the part of the word after $keep",
        "    COMPREPLY=()",
        '    for w in "${cands[@]}"; do',
        '        [[ $w == "$keep"* ]] && COMPREPLY+=("${w#"$keep"}")',
        "    done",
        "}",
        "",
        f"complete -F _nvmemd_query {PROG}",
        "",
    ]
    return "\n".join(out)


# --- zsh ----------------------------------------------------------------------------

#: The parts of the zsh script that do not depend on the parser (@VALUED@: the
#: options that take a value, as a case pattern).
_ZSH_HELPERS = r"""
# REPLY: the value word $1 as typed, as the command sees it (unquoted, a leading ~ or
# ~user expanded; not after --opt=, as the shell does not)
_nvmemd_query_value() {
  REPLY=${(Q)1}
  if [[ $1 == \~* ]]; then
    local user=${${1%%/*}#\~} home
    zmodload -i zsh/parameter 2>/dev/null
    if [[ -z $user ]]; then home=$HOME; else home=${userdirs[$user]:-$nameddirs[$user]}; fi
    [[ -n $home ]] && REPLY=$home${REPLY#"~$user"}
  fi
}

# What the line says (the whole line, _nvmemd_query_line: the subcommand's _arguments
# sees only the words from the subcommand on): the options that choose the system and
# the bus (passed), sysroot, provider, consumer, netdev.
_nvmemd_query_scan() {
  local i w v
  for ((i = 2; i < _nvmemd_query_current; i++)); do
    w=$_nvmemd_query_line[i] v=
    case $w in
      (--*=*) v=${(Q)${w#*=}} w=${w%%=*} ;;
      (@VALUED@) _nvmemd_query_value "$_nvmemd_query_line[++i]"; v=$REPLY ;;
    esac
    case $w in
      (--sysroot|--config|--address) passed+=("$w=$v") ;|
      (--direct|--session) passed+=($w) ;;
      (--sysroot) sysroot=$v ;;
      (--provider) provider=$v ;;
      (--consumer) consumer=$v ;;
      (--netdev) netdev=$v ;;
    esac
  done
}

# names: what DT consumer --consumer NODE (a path or label) or --netdev IF calls its
# cells (nvmem-cell-names), read from the device tree under the sysroot; fails when
# it cannot be read there (a node path without unit addresses, say).
_nvmemd_query_consumer_names() {
  local root=${${sysroot:-${NVMEMD_SYSROOT:-/}}%/} base node label
  if [[ -n $netdev ]]; then
    [[ $netdev != */* ]] || return 1
    for node in $root/sys/class/net/$netdev/{,device/}of_node; do
      [[ -r $node/nvmem-cell-names ]] && break
    done
  else
    for base in $root/sys/firmware/devicetree/base $root/proc/device-tree; do
      [[ -d $base ]] && break
    done
    node=$consumer
    if [[ $node != /* ]]; then  # a label: __symbols__ has its path
      label=${node#\&}
      [[ $label =~ '^[A-Za-z_][A-Za-z0-9_]*$' && -r $base/__symbols__/$label ]] || return 1
      node=${${(0)"$(<$base/__symbols__/$label)"}[1]}
    fi
    node=$base/${node#/}
  fi
  [[ -r $node/nvmem-cell-names ]] || return 1
  names=(${(0)"$(<$node/nvmem-cell-names)"})
}

# _arguments calls an action with compadd options first (-J -default- …): the kind
# (providers, cells or netdevs) is the last argument, the rest goes to compadd.
# Names come from nvmemd-query … --names with the options passed on; cells: those of
# --provider P, or the names of --consumer/--netdev.
_nvmemd_query_names() {
  local kind=$argv[-1]
  argv[-1]=()
  local -a passed names
  local sysroot= provider= consumer= netdev=
  local -a args=($kind)
  _nvmemd_query_scan
  case $kind in
    (netdevs)
      names=(${${sysroot:-${NVMEMD_SYSROOT:-/}}%/}/sys/class/net/*(N:t)) args=() ;;
    (cells)
      if [[ -n $consumer$netdev ]] && _nvmemd_query_consumer_names; then
        args=()
      elif [[ -n $provider ]]; then
        args=(cells $provider)
      fi ;;
  esac
  # _call_program evaluates its arguments: quoted
  (( $#args )) &&
    names=(${(f)"$(_call_program $kind @PROG@ ${(q)passed} ${(q)args} --names 2>/dev/null)"})
  compadd "$@" -a names
}
"""


def _zsh_action(o: Option | None, kind: str | None) -> str:
    if o is not None and o.choices:
        return f":value:({' '.join(o.choices)})"
    if kind == "dir":
        return ":directory:_files -/"
    if kind == "file":
        return ":file:_files"
    if kind in ("providers", "cells", "netdevs"):
        return f":{kind[:-1]}:_nvmemd_query_names {kind}"
    return ":value: "


def _zsh_spec(o: Option) -> list[str]:
    action = _zsh_action(o, o.kind) if o.takes_value else ""
    specs = []
    for n in o.names:
        eq = "=" if o.takes_value and n.startswith("--") else ""
        repeat = "*" if n in ("-v", "--verbose") else ""
        described = o.help.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
        specs.append(sh_quote(f"{repeat}{n}{eq}[{described}]{action}"))
    return specs


def zsh(parser: argparse.ArgumentParser | None = None) -> str:
    top, commands = model(parser)
    valued = sorted({n for o in top + [o for c in commands for o in c.options]
                     if o.takes_value for n in o.names})
    out = [
        f"#compdef {PROG}",
        f"# zsh completion for {PROG}: generated from its argparse parser by",
        "# `python3 -m nvmemd.cli.completion zsh`; do not edit.",
        _ZSH_HELPERS.replace("@VALUED@", "|".join(valued)).replace("@PROG@", PROG),
        "_nvmemd_query() {",
        "  local curcontext=$curcontext state line ret=1",
        "  local -a _nvmemd_query_line=(\"${words[@]}\")",
        "  local _nvmemd_query_current=$CURRENT",
        "  typeset -A opt_args",
        "  # -A: options after the subcommand are the subcommand's (its _arguments has the",
        "  # global ones too: get -v --format)",
        "  _arguments -C -A '-*' \\",
    ]
    out += [f"    {s} \\" for o in top for s in _zsh_spec(o)]
    out += ["    '1:command:->command' \\", "    '*::argument:->argument' && ret=0",
            "  case $state in",
            "    command)",
            "      local -a commands",
            "      commands=("]
    out += [f"        {sh_quote(c.name + ':' + _printable(c.help))}" for c in commands]
    out += ["      )",
            "      _describe -t commands command commands && ret=0 ;;",
            "    argument)",
            "      curcontext=${curcontext%:*:*}:" + PROG + "-$words[1]:",
            "      case $words[1] in"]
    for c in commands:
        specs = [s for o in c.options for s in _zsh_spec(o)]
        if c.positional:
            count = "*" if c.most is None else "1"
            specs.append(f"'{count}{_zsh_action(None, c.positional)}'")
        out.append(f"        {c.name}) _arguments \\")
        out += [f"            {s} \\" for s in specs]
        out.append("            && ret=0 ;;")
    out += ["      esac ;;", "  esac", "  return ret", "}", "",
            f"# autoloaded by compinit (as _{PROG} on $fpath): complete; sourced: register",
            f"if [[ $funcstack[1] == _{PROG} ]]; then",
            '  _nvmemd_query "$@"',
            "else",
            f"  compdef _nvmemd_query {PROG}",
            "fi",
            ""]
    return "\n".join(out)


# --- fish ---------------------------------------------------------------------------

#: The parts of the fish script that do not depend on the parser (@VALUED@: the
#: options that take a value).
_FISH_HELPERS = r"""
# The value word $word as the command sees it (commandline -o has unquoted it): a
# leading ~ or ~user expanded (the shell does, but not after --opt=).
function __nvmemd_query_tilde --argument-names word
    set -l user (string replace -r '^~([^/]*).*' '$1' -- $word)
    if test "$user" = "$word"
        printf '%s\n' $word
    else if test -z "$user"
        printf '%s\n' $HOME(string sub -s 2 -- $word)
    else if string match -qr '^[A-Za-z0-9._][A-Za-z0-9._-]*$' -- $user
        set -l home
        eval set home "~$user"
        printf '%s\n' $home(string sub -s (math (string length -- $user) + 2) -- $word)
    else
        printf '%s\n' $word
    end
end

# What the line before the token being completed says, in __nvmemd_query_*: the
# subcommand (cmd) and how many arguments it has (npos), the options that choose
# the system and the bus (passed), sysroot, provider, consumer, netdev.
function __nvmemd_query_parse
    set -g __nvmemd_query_cmd
    set -g __nvmemd_query_npos 0
    set -g __nvmemd_query_passed
    set -g __nvmemd_query_sysroot $NVMEMD_SYSROOT
    set -g __nvmemd_query_provider
    set -g __nvmemd_query_consumer
    set -g __nvmemd_query_netdev
    set -l tokens (commandline -opc)
    set -e tokens[1]
    while set -q tokens[1]
        set -l w $tokens[1]
        set -l v
        set -e tokens[1]
        switch $w
            case '--*=*'
                set v (string replace -r '^[^=]*=' '' -- $w)
                set w (string replace -r '=.*' '' -- $w)
            case @VALUED@
                if set -q tokens[1]
                    set v (__nvmemd_query_tilde $tokens[1])
                    set -e tokens[1]
                end
            case '-*'
            case '*'
                if test -z "$__nvmemd_query_cmd"
                    set -g __nvmemd_query_cmd $w
                else
                    set -g __nvmemd_query_npos (math $__nvmemd_query_npos + 1)
                end
        end
        switch $w
            case --sysroot --config --address
                set -ga __nvmemd_query_passed "$w=$v"
                test $w = --sysroot; and set -g __nvmemd_query_sysroot "$v"
            case --direct --session
                set -ga __nvmemd_query_passed $w
            case --provider
                set -g __nvmemd_query_provider "$v"
            case --consumer
                set -g __nvmemd_query_consumer "$v"
            case --netdev
                set -g __nvmemd_query_netdev "$v"
        end
    end
end

# Is the subcommand $cmd ('': none yet)?
function __nvmemd_query_using --argument-names cmd
    __nvmemd_query_parse
    test "$__nvmemd_query_cmd" = "$cmd"
end

# Is the subcommand $cmd, and does it take another argument (at most $most)?
function __nvmemd_query_wants --argument-names cmd most
    __nvmemd_query_using $cmd; or return
    test -z "$most"; or test $__nvmemd_query_npos -lt $most
end

# What DT consumer --consumer NODE (a path or label) or --netdev IF calls its cells
# (nvmem-cell-names), read from the device tree under the sysroot; fails when it
# cannot be read there (a node path without unit addresses, say).
function __nvmemd_query_consumer_names --argument-names root consumer netdev
    set root (string replace -r '/$' '' -- $root)
    set -l node
    if test -n "$netdev"
        string match -q '*/*' -- $netdev; and return 1
        for n in $root/sys/class/net/$netdev/of_node $root/sys/class/net/$netdev/device/of_node
            set node $n
            test -r $node/nvmem-cell-names; and break
        end
    else
        set -l base $root/sys/firmware/devicetree/base
        test -d $base; or set base $root/proc/device-tree
        set node $consumer
        if not string match -q '/*' -- $node  # a label: __symbols__ has its path
            set -l label (string replace -r '^&' '' -- $node)
            string match -qr '^[A-Za-z_][A-Za-z0-9_]*$' -- $label; or return 1
            test -r $base/__symbols__/$label; or return 1
            set node (string split0 < $base/__symbols__/$label)[1]
        end
        set node $base/(string replace -r '^/' '' -- $node)
    end
    test -r $node/nvmem-cell-names; or return 1
    string split0 < $node/nvmem-cell-names
end

# Names from the system: $what providers, cells or netdevs (nvmemd-query … --names,
# with the options passed on); cells: those of --provider P, or the names of
# --consumer/--netdev.
function __nvmemd_query_names --argument-names what
    __nvmemd_query_parse
    set -l root $__nvmemd_query_sysroot
    test -n "$root"; or set root /
    switch $what
        case netdevs
            for f in (string replace -r '/$' '' -- $root)/sys/class/net/*
                string replace -r '.*/' '' -- $f
            end
        case cells
            if test -n "$__nvmemd_query_consumer$__nvmemd_query_netdev"
                and __nvmemd_query_consumer_names $root "$__nvmemd_query_consumer" \
                    "$__nvmemd_query_netdev"
                return
            end
            if test -n "$__nvmemd_query_provider"
                @PROG@ $__nvmemd_query_passed cells $__nvmemd_query_provider --names 2>/dev/null
            else
                @PROG@ $__nvmemd_query_passed cells --names 2>/dev/null
            end
        case '*'
            @PROG@ $__nvmemd_query_passed $what --names 2>/dev/null
    end
end
"""


def fish(parser: argparse.ArgumentParser | None = None) -> str:
    top, commands = model(parser)
    valued = sorted({n for o in top + [o for c in commands for o in c.options]
                     if o.takes_value for n in o.names})
    out = [
        f"# fish completion for {PROG}: generated from its argparse parser by",
        "# `python3 -m nvmemd.cli.completion fish`; do not edit.",
        _FISH_HELPERS.replace("@VALUED@", " ".join(valued)).replace("@PROG@", PROG),
        f"complete -c {PROG} -f",
    ]
    for c in commands:
        out.append(f"complete -c {PROG} -n '__nvmemd_query_using \"\"' "
                   f"-a {c.name} -d {fish_quote(_printable(c.help))}")

    def values(kind: str | None) -> str:
        if kind == "dir":
            return "-x -a '(__fish_complete_directories)'"
        if kind == "file":
            return "-r -F"
        if kind in ("providers", "cells", "netdevs"):
            return f"-x -a '(__nvmemd_query_names {kind})'"
        return "-x"

    def line(o: Option, condition: str) -> str:
        parts = [f"complete -c {PROG}"]
        if condition:
            parts.append(f"-n '{condition}'")
        for n in o.names:
            parts.append(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}")
        if o.takes_value:
            parts.append(f"-x -a '{' '.join(o.choices)}'" if o.choices else values(o.kind))
        parts.append(f"-d {fish_quote(o.help)}")
        return " ".join(parts)

    # the global options, before and after the subcommand (--version only before it)
    out += [line(o, '__nvmemd_query_using ""' if "--version" in o.names else "")
            for o in top]
    top_names = {n for o in top for n in o.names}
    for c in commands:
        cond = f"__nvmemd_query_using {c.name}"
        out += [line(o, cond) for o in c.options if not set(o.names) <= top_names]
        if c.positional:
            want = f"__nvmemd_query_wants {c.name} {c.most or ''}".rstrip()
            out.append(f"complete -c {PROG} -n '{want}' {values(c.positional)}")
    return "\n".join(out) + "\n"


SHELLS = {"bash": bash, "zsh": zsh, "fish": fish}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m nvmemd.cli.completion",
                                 description=f"Print {PROG}'s completion script for a shell.")
    ap.add_argument("shell", choices=sorted(SHELLS))
    args = ap.parse_args(argv)
    sys.stdout.write(SHELLS[args.shell]())
    return 0


if __name__ == "__main__":
    sys.exit(main())
