"""Shell completion for ``nvmemd-query``, generated from its argparse parser.

``python3 -m nvmemd.cli.completion bash|zsh|fish`` prints the script; the
Debian package builds them at build time (debian/rules), so subcommands,
options and choices always match :func:`nvmemd.cli.main.build_parser`.
Provider and cell names come from the running system: the scripts call
``nvmemd-query providers --names`` / ``cells --names`` (errors silenced),
passing on ``--sysroot``, ``--config``, ``--direct``, ``--address`` and
``--session`` from the command line being completed.
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
    "output": "file", "provider": "providers", "spec": "cells",
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


def _short_help(action: argparse.Action) -> str:
    text = (action.help or "").split(" (")[0].split(": ")[0].split("; ")[0]
    return "".join(c for c in text if c.isalnum() or c in " ,./-+").strip()


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
                kinds = [VALUE_KINDS.get(p.dest) for p in sub._actions if not p.option_strings]
                commands.append(Command(name, helps.get(name, ""), _options(sub),
                                        next((k for k in kinds if k), None)))
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

# Offer $pre$w for each word w (the arguments) that starts with $val.
_nvmemd_query_add() {
    local w
    for w; do [[ $w == "$val"* ]] && cands+=("$pre$w"); done
}

# Files (-f) or directories (-d) whose names start with $val: readline quotes them
# and ends a directory with a / (-o filenames).
_nvmemd_query_files() {
    local -a found
    compopt -o filenames 2>/dev/null
    mapfile -t found < <(compgen "$1" -- "$val")
    _nvmemd_query_add "${found[@]}"
}

# Names from the system: $1 providers or cells (nvmemd-query … --names), with the
# options that choose the system and the bus ($passed) from the line.
_nvmemd_query_names() {
    local -a names
    mapfile -t names < <(nvmemd-query "${passed[@]}" "$1" --names 2>/dev/null)
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
        "    local words cword cur keep pre= val opt= i w cmd=",
        "    local -a passed=() cands=()",
        "    _nvmemd_query_words",
        "    for ((i = 1; i < cword; i++)); do",
        '        w=${words[i]}',
        '        case $w in',
        f"            {passed_valued})",
        '                _nvmemd_query_dequote "${words[i+1]}"',
        '                passed+=("$w" "$REPLY"); ((i++)) ;;',
        f"            {'|'.join(n + '=*' for n in PASSED_ON if unique[n].takes_value)}"
        f'|{passed_flags})',
        '                _nvmemd_query_dequote "$w"; passed+=("$REPLY") ;;',
        f"            {'|'.join(valued)}) ((i++)) ;;",
        "            -*) ;;",
        '            *) [[ -z $cmd ]] && cmd=$w ;;',
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
            out.append(f"            {c.name}) {_bash_action(None, c.positional)} ;;")
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


def _zsh_spec(o: Option) -> list[str]:
    action = ""
    if o.takes_value:
        if o.choices:
            action = f":value:({' '.join(o.choices)})"
        elif o.kind == "dir":
            action = ":directory:_files -/"
        elif o.kind == "file":
            action = ":file:_files"
        elif o.kind in ("providers", "cells"):
            action = f":{o.kind}:_nvmemd_query_names {o.kind}"
        else:
            action = ":value: "
    specs = []
    for n in o.names:
        eq = "=" if o.takes_value and n.startswith("--") else ""
        repeat = "*" if n in ("-v", "--verbose") else ""
        specs.append(f"'{repeat}{n}{eq}[{o.help}]{action}'")
    return specs


def zsh(parser: argparse.ArgumentParser | None = None) -> str:
    top, commands = model(parser)
    out = [
        f"#compdef {PROG}",
        f"# zsh completion for {PROG}: generated from its argparse parser by",
        "# `python3 -m nvmemd.cli.completion zsh`; do not edit.",
        "",
        "# _arguments calls an action with compadd options first (-J -default- …):",
        "# the kind (providers or cells) is the last argument, the rest goes to compadd.",
        "# The options are looked for on the whole line (_nvmemd_query_line: the words",
        "# before the subcommand's _arguments dropped those before it), unquoted.",
        "_nvmemd_query_names() {",
        "  local kind=$argv[-1]",
        "  argv[-1]=()",
        "  local -a passed names",
        "  local i w",
        "  for ((i = 2; i < _nvmemd_query_current; i++)); do",
        "    w=$_nvmemd_query_line[i]",
        "    case $w in",
        "      --sysroot|--config|--address)",
        "        passed+=($w ${(Q)_nvmemd_query_line[i+1]}); ((i++)) ;;",
        "      --sysroot=*|--config=*|--address=*|--direct|--session) passed+=(${(Q)w}) ;;",
        "    esac",
        "  done",
        "  # _call_program evaluates its arguments: quoted",
        f'  names=(${{(f)"$(_call_program {PROG} {PROG} ${{(q)passed}} $kind --names '
        '2>/dev/null)"})',
        '  compadd "$@" -a names',
        "}",
        "",
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
    out += [f"        '{c.name}:{_short_help_text(c.help)}'" for c in commands]
    out += ["      )",
            "      _describe -t commands command commands && ret=0 ;;",
            "    argument)",
            "      curcontext=${curcontext%:*:*}:" + PROG + "-$words[1]:",
            "      case $words[1] in"]
    for c in commands:
        specs = [s for o in c.options for s in _zsh_spec(o)]
        if c.positional in ("providers", "cells"):
            specs.append(f"'*:{c.positional}:_nvmemd_query_names {c.positional}'")
        elif c.positional == "file":
            specs.append("'1:file:_files'")
        out.append(f"        {c.name}) _arguments \\")
        out += [f"            {s} \\" for s in specs]
        out.append("            && ret=0 ;;")
    out += ["      esac ;;", "  esac", "  return ret", "}", "", '_nvmemd_query "$@"', ""]
    return "\n".join(out)


def _short_help_text(text: str) -> str:
    return "".join(c for c in text if c.isalnum() or c in " ,./-+()").strip()


# --- fish ---------------------------------------------------------------------------


def fish(parser: argparse.ArgumentParser | None = None) -> str:
    top, commands = model(parser)
    names = " ".join(c.name for c in commands)
    out = [
        f"# fish completion for {PROG}: generated from its argparse parser by",
        "# `python3 -m nvmemd.cli.completion fish`; do not edit.",
        "",
        "function __nvmemd_query_names --argument-names what",
        "    set -l passed",
        "    set -l tokens (commandline -opc)",
        "    set -l i 2",
        "    while test $i -le (count $tokens)",
        "        switch $tokens[$i]",
        "            case --sysroot --config --address",
        "                set i (math $i + 1)",
        "                if test $i -le (count $tokens)",
        "                    set -a passed $tokens[(math $i - 1)] $tokens[$i]",
        "                end",
        "            case '--sysroot=*' '--config=*' '--address=*' --direct --session",
        "                set -a passed $tokens[$i]",
        "        end",
        "        set i (math $i + 1)",
        "    end",
        f"    {PROG} $passed $what --names 2>/dev/null",
        "end",
        "",
        f"complete -c {PROG} -f",
    ]
    for c in commands:
        out.append(f"complete -c {PROG} -n 'not __fish_seen_subcommand_from {names}' "
                   f"-a {c.name} -d '{_short_help_text(c.help)}'")

    def line(o: Option, condition: str) -> str:
        parts = [f"complete -c {PROG}"]
        if condition:
            parts.append(f"-n '{condition}'")
        for n in o.names:
            parts.append(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}")
        if o.takes_value:
            if o.choices:
                parts.append(f"-x -a '{' '.join(o.choices)}'")
            elif o.kind == "dir":
                parts.append("-x -a '(__fish_complete_directories)'")
            elif o.kind == "file":
                parts.append("-r -F")
            elif o.kind in ("providers", "cells"):
                parts.append(f"-x -a '(__nvmemd_query_names {o.kind})'")
            else:
                parts.append("-x")
        parts.append(f"-d '{o.help}'")
        return " ".join(parts)

    top_names = {n for o in top for n in o.names}
    out += [line(o, "") for o in top]
    for c in commands:
        cond = f"__fish_seen_subcommand_from {c.name}"
        out += [line(o, cond) for o in c.options if not set(o.names) <= top_names]
        if c.positional in ("providers", "cells"):
            out.append(f"complete -c {PROG} -n '{cond}' "
                       f"-a '(__nvmemd_query_names {c.positional})'")
        elif c.positional == "file":
            out.append(f"complete -c {PROG} -n '{cond}' -F")
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
