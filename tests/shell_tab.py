"""Press Tab in a real interactive bash or zsh, on a pseudo-terminal, and see what it does.

The shell reads the line from the terminal as a user types it, so readline (bash) or
ZLE (zsh) splits the words, sets COMP_WORDS/COMP_CWORD/COMP_LINE/COMP_POINT
(COMP_WORDBREAKS as bash sets it) or ``words``/``CURRENT``/``PREFIX``, and calls the
completion exactly as Tab does. After the Tab a key bound to a small function writes
the edited line to a file (bash ``bind -x`` with READLINE_LINE, a zsh widget with
BUFFER): that is the line the user sees. What was offered is recorded too: bash's
COMPREPLY after the registered completion function (a wrapper registered with the same
``complete`` options), zsh's matches (``compadd`` wrapped: it records what
``compadd -O`` says matches, then adds them as usual).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shlex
import signal
import struct
import subprocess
import termios
import time
from dataclasses import dataclass
from pathlib import Path

#: Ctrl-X Ctrl-D: write the line being edited to $TAB_LINE (bound in both shells).
DUMP_KEY = b"\x18\x04"
#: The prompt: once the shell shows it, its line editor reads the terminal (raw mode).
PROMPT = "tab-prompt$ "


@dataclass
class Tab:
    line: str  # the command line after the Tab
    offered: list[str]  # what the completion offered (bash: COMPREPLY; zsh: the matches)
    terminal: str  # everything the shell wrote to the terminal after start-up

    def __repr__(self) -> str:
        return f"Tab(line={self.line!r}, offered={self.offered!r})"


BASH_RC = r"""
source "$TAB_SCRIPT"
__tab_spec=$(complete -p nvmemd-query)
__tab_fn=${__tab_spec#* -F }; __tab_fn=${__tab_fn%% *}
__tab_wrap() {
    "$__tab_fn" "$@"; local rc=$?
    (( ${#COMPREPLY[@]} )) && printf '%s\0' "${COMPREPLY[@]}" >> "$TAB_OFFERED"
    return $rc
}
eval "${__tab_spec/ -F $__tab_fn / -F __tab_wrap }"
__tab_line() { printf '%s' "$READLINE_LINE" > "$TAB_LINE.tmp"; mv "$TAB_LINE.tmp" "$TAB_LINE"; }
bind -x '"\C-x\C-d": __tab_line'
PS1='tab-prompt$ '
"""

ZSH_RC = r"""
[[ -n $TAB_FPATH ]] && fpath=("$TAB_FPATH" $fpath)
autoload -Uz compinit && compinit -u -D
[[ -z $TAB_FPATH ]] && source "$TAB_SCRIPT"
LISTMAX=100000
compadd() {
    # calls that only ask what matches (-O, -A, -D) are the completion system's own
    if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
    local -a __tab_hits
    builtin compadd -O __tab_hits "$@"
    (( $#__tab_hits )) && print -rn -- "${(pj:\0:)__tab_hits}"$'\0' >> $TAB_OFFERED
    builtin compadd "$@"
}
__tab_line() { print -rn -- "$BUFFER" > "$TAB_LINE.tmp"; mv "$TAB_LINE.tmp" "$TAB_LINE" }
zle -N __tab_line
bindkey '^X^D' __tab_line
PS1='tab-prompt$ '
"""


def _drive(argv: list[str], env: dict[str, str], keys: bytes, done: Path, cwd: Path,
           timeout: float) -> str:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 250, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            cwd=cwd, start_new_session=True)
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while not done.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"no answer from {argv[0]} after {timeout} s: "
                                     f"{out.decode(errors='replace')!r}")
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    out += os.read(master, 65536)
                except OSError:  # the shell is gone
                    raise AssertionError(f"{argv[0]} exited: "
                                         f"{out.decode(errors='replace')!r}") from None
            if not sent and PROMPT.encode() in out:
                out = out[out.index(PROMPT.encode()) + len(PROMPT):]
                os.write(master, keys)
                sent = True
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(master)
    return out.decode(errors="replace")


def tab(shell: str, script: Path, line: str, env: dict[str, str], tmp: Path,
        cwd: Path | None = None, timeout: float = 60, source: bool = False) -> Tab:
    """Type *line* in an interactive *shell* ("bash" or "zsh") with the completion
    *script* installed, press Tab once, and report the line and the offers.

    bash sources the script; zsh finds it on $fpath as ``_nvmemd-query`` (as the
    package installs it), or sources it after compinit (*source*)."""
    tmp.mkdir(parents=True, exist_ok=True)
    done, offered = tmp / "line", tmp / "offered"
    for f in (done, offered):
        f.unlink(missing_ok=True)
    env = dict(env, TAB_SCRIPT=str(script), TAB_LINE=str(done), TAB_OFFERED=str(offered),
               TERM="xterm", INPUTRC="/dev/null")
    if shell == "bash":
        rc = tmp / "bashrc"
        rc.write_text(BASH_RC)
        argv = ["bash", "--noprofile", "--rcfile", str(rc), "-i"]
    else:
        (tmp / ".zshrc").write_text(ZSH_RC)
        env.update(ZDOTDIR=str(tmp))
        if not source:
            fpath = tmp / "fpath"
            fpath.mkdir(exist_ok=True)
            (fpath / "_nvmemd-query").write_text(script.read_text())
            env.update(TAB_FPATH=str(fpath))
        argv = ["zsh", "-d", "-i"]  # no global rc files but /etc/zsh/zshenv
    terminal = _drive(argv, env, line.encode() + b"\t" + DUMP_KEY, done, cwd or tmp,
                      timeout)
    words = offered.read_bytes().decode().split("\0")[:-1] if offered.exists() else []
    return Tab(done.read_text(), words, terminal)


def fish_complete(script: Path, line: str, env: dict[str, str], tmp: Path,
                  cwd: Path | None = None, descriptions: bool = False,
                  source: bool = False) -> list[str]:
    """fish's own completion engine on *line* (``complete -C``), the script found
    where fish looks for vendor completions (or sourced: *source*); the candidates
    (with their descriptions after a tab: *descriptions*)."""
    tmp.mkdir(parents=True, exist_ok=True)
    comp = tmp / "fish-completions"
    comp.mkdir(exist_ok=True)
    (comp / "nvmemd-query.fish").write_text(script.read_text())
    load = (f"source {shlex.quote(str(script))}" if source
            else f"set -p fish_complete_path {shlex.quote(str(comp))}")
    code = f"{load}; complete -C {shlex.quote(line)}"
    env = dict(env, XDG_CONFIG_HOME=str(tmp / "xdg-config"),
               XDG_DATA_HOME=str(tmp / "xdg-data"))
    proc = subprocess.run(["fish", "--no-config", "-c", code], capture_output=True,
                          text=True, env=env, cwd=cwd or tmp, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    return lines if descriptions else [w.split("\t")[0] for w in lines]
