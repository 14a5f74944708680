#!/usr/bin/env python3
"""The parsing and auditing half of tests/packaging.sh: reads the deploy files the way their
tools would and checks what the binary did under strace. Each subcommand prints its result on
stdout, one item a line, and exits non-zero with a reason on stderr when a check fails.

  unit-env UNIT ROOT CREDS      the unit's Environment= lines, specifiers expanded under ROOT
  unit-exec UNIT ROOT           the unit's ExecStart= argv, absolute paths under ROOT
  unit-get UNIT KEY             every value of KEY= in the unit
  dockerfile-env DOCKERFILE     the ENV of the Dockerfile's last stage
  dockerfile-get DOCKERFILE KW  the arguments of instruction KW in the last stage
  compose-env RESOLVED SERVICE  a service's environment, from `docker-compose config` output
  context ROOT DEST             copies what `docker build ROOT` would send (.dockerignore applied)
  syscalls UNIT                 the system calls the unit's SystemCallFilter= lines allow
  strace-audit LOG BIN STATE UNIT
                                the traced server (BIN and its threads) wrote nowhere but STATE,
                                made only system calls the unit's filter allows and opened only
                                the address families it allows
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


def fail(message: str) -> None:
    print(f"packaging.py: {message}", file=sys.stderr)
    sys.exit(1)


# --- systemd units -------------------------------------------------------------------------


def unit_values(unit: str, key: str) -> list[str]:
    """Every value of `key=` in the unit's sections, in order (continuation lines joined)."""
    values = []
    text = Path(unit).read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("#", ";")) or "=" not in line:
            continue
        name, value = line.split("=", 1)
        if name.strip() == key:
            values.append(value.strip())
    return values


def expand_specifiers(value: str, root: str, creds: str) -> str:
    """The system-manager specifiers the unit uses, with /etc and /var/lib moved under `root`."""
    table = {"E": f"{root}/etc", "S": f"{root}/var/lib", "d": creds, "%": "%"}

    def one(match: re.Match) -> str:
        letter = match.group(1)
        if letter not in table:
            fail(f"specifier %{letter} is not emulated by tests/packaging.py")
        return table[letter]

    return re.sub(r"%(.)", one, value)


def under_root(path: str, root: str) -> str:
    return f"{root}{path}" if path.startswith("/") else path


def cmd_unit_env(unit: str, root: str, creds: str) -> None:
    for value in unit_values(unit, "Environment"):
        # Environment= takes space-separated assignments, optionally quoted; ours are one each.
        for assignment in value.split():
            print(expand_specifiers(assignment.strip("\"'"), root, creds))


def cmd_unit_exec(unit: str, root: str) -> None:
    (exec_start,) = unit_values(unit, "ExecStart")
    for arg in exec_start.split():
        print(under_root(expand_specifiers(arg, root, "-"), root))


def cmd_unit_get(unit: str, key: str) -> None:
    for value in unit_values(unit, key):
        print(value)


# --- Dockerfiles -----------------------------------------------------------------------------


def dockerfile_instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of the last stage, continuation lines joined, comments dropped."""
    lines = []
    for line in Path(dockerfile).read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        lines.append(line)
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            instructions = []
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def cmd_dockerfile_env(dockerfile: str) -> None:
    for keyword, args in dockerfile_instructions(dockerfile):
        if keyword == "ENV":
            for assignment in re.findall(r'(\S+?=(?:"[^"]*"|\S*))', args):
                name, value = assignment.split("=", 1)
                print(f"{name}={value.strip(chr(34))}")


def cmd_dockerfile_get(dockerfile: str, keyword: str) -> None:
    for found, args in dockerfile_instructions(dockerfile):
        if found == keyword.upper():
            print(args)


# --- compose ---------------------------------------------------------------------------------


def cmd_compose_env(resolved: str, service: str) -> None:
    import yaml

    config = yaml.safe_load(Path(resolved).read_text())
    environment = config["services"][service].get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    for name, value in environment.items():
        print(f"{name}={value}")


# --- the build context -----------------------------------------------------------------------


def dockerignore_patterns(root: Path) -> list[tuple[bool, re.Pattern]]:
    """.dockerignore as (excluded?, regex) pairs, later ones winning, in Docker's syntax: Go's
    filepath.Match per path segment, `**` for any number of segments, `!` to re-include."""
    patterns = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex += "(?:.*/)?"
                i += 3
            elif pattern.startswith("**", i):
                regex += ".*"
                i += 2
            elif pattern[i] == "*":
                regex += "[^/]*"
                i += 1
            elif pattern[i] == "?":
                regex += "[^/]"
                i += 1
            else:
                regex += re.escape(pattern[i])
                i += 1
        # A pattern that names a directory excludes everything below it.
        patterns.append((not include, re.compile(f"^{regex}(?:/.*)?$")))
    return patterns


def cmd_context(root_arg: str, dest_arg: str) -> None:
    root, dest = Path(root_arg).resolve(), Path(dest_arg)
    patterns = dockerignore_patterns(root)
    sent = []
    for directory, dirnames, filenames in os.walk(root):
        rel_dir = Path(directory).relative_to(root)
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            excluded = False
            for exclude, regex in patterns:
                if regex.match(rel):
                    excluded = exclude
            if not excluded:
                sent.append(rel)
        # Never descend into what is excluded as a whole (target/, .git): it is large.
        dirnames[:] = [
            d
            for d in dirnames
            if not any(exclude and regex.match((rel_dir / d).as_posix()) for exclude, regex in patterns)
            or any(not exclude for exclude, _ in patterns)
        ]
    for rel in sent:
        source, target = root / rel, dest / rel
        text_head = source.read_bytes()[:4096] if source.is_file() else b""
        if b"PRIVATE KEY-----" in text_head:
            fail(f"the build context would contain a private key: {rel}")
        if rel.split("/")[0] in ("target", ".git"):
            fail(f"the build context would contain {rel}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    print(len(sent))


# --- the system-call filter and the strace audit ---------------------------------------------


def syscall_groups() -> dict[str, set[str]]:
    """Every @group `systemd-analyze syscall-filter` knows, with its direct members."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], capture_output=True, text=True, check=True)
    groups: dict[str, set[str]] = {}
    current = None
    for line in out.stdout.splitlines():
        if line.startswith("@"):
            current = line.strip()
            groups[current] = set()
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].add(line.strip())
    return groups


def expand(names: list[str], groups: dict[str, set[str]]) -> set[str]:
    calls: set[str] = set()
    for name in names:
        if name.startswith("@"):
            if name not in groups:
                fail(f"unknown system call group {name}")
            calls |= expand(sorted(groups[name]), groups)
        else:
            calls.add(name)
    return calls


def allowed_syscalls(unit: str) -> set[str]:
    """What SystemCallFilter= allows: the first line sets an allow list, `~` lines deny from it."""
    groups = syscall_groups()
    allowed: set[str] = set()
    for value in unit_values(unit, "SystemCallFilter"):
        deny = value.startswith("~")
        names = value.lstrip("~").split()
        if deny:
            allowed -= expand(names, groups)
        else:
            allowed |= expand(names, groups)
    if not allowed:
        fail("the unit has no SystemCallFilter= allow list")
    return allowed


def cmd_syscalls(unit: str) -> None:
    for name in sorted(allowed_syscalls(unit)):
        print(name)


LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
# Calls that change the file system, and which of their string arguments are the paths changed.
CHANGING = {
    "mkdir",
    "mkdirat",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "rmdir",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "truncate",
    "chmod",
    "fchmodat",
    "chown",
    "fchownat",
    "lchown",
    "utimensat",
    "mknod",
    "mknodat",
}


def cmd_strace_audit(log: str, binary: str, state: str, unit: str) -> None:
    allowed = allowed_syscalls(unit)
    families = set(" ".join(unit_values(unit, "RestrictAddressFamilies")).split())
    state = os.path.realpath(state)
    server_pid = None
    used: dict[str, int] = {}
    problems = []
    writes = 0
    for raw in Path(log).read_text(errors="replace").splitlines():
        match = LINE.match(raw)
        if not match:
            continue
        pid, resumed, call, rest = match.groups()
        name = resumed or call
        if server_pid is None:
            # Until the server binary is executed, the lines are setpriv's and env's.
            # (setpriv's own execve names the binary too, but as an argument, not as the program.)
            if call == "execve" and rest.startswith(f'"{binary}"') and rest.rstrip().endswith("= 0"):
                server_pid = pid
            continue
        if resumed and name == "execve":
            continue
        used[name] = used.get(name, 0) + 1
        if call is None:
            continue
        # Paths the call writes: files opened for writing, and the file-system-changing calls.
        paths = []
        if name in ("open", "openat", "openat2", "creat") and (
            name == "creat" or any(flag in rest.split(")")[0] for flag in WRITE_FLAGS)
        ):
            paths = re.findall(r'"([^"]*)"', rest)[:1]
            dirfd = re.match(r"(\d+|AT_FDCWD)<([^>]*)>,", rest)
            if dirfd and paths and not paths[0].startswith("/"):
                paths = [os.path.join(dirfd.group(2), paths[0])]
        elif name in CHANGING:
            paths = re.findall(r'"([^"]*)"', rest)
            dirfds = re.findall(r"\d+<([^>]*)>", rest)
            if dirfds:
                paths = [p if p.startswith("/") else os.path.join(dirfds[0], p) for p in paths]
        for path in paths:
            writes += 1
            resolved = os.path.normpath(path if path.startswith("/") else os.path.join("/", path))
            if resolved == "/dev/null" and name.startswith("open"):
                continue
            if not (resolved == state or resolved.startswith(state + "/")):
                problems.append(f"writes outside the state directory: {raw.strip()}")
        if name in ("socket", "socketpair"):
            family = rest.split(",")[0].strip()
            if family not in families:
                problems.append(f"address family {family} is not in RestrictAddressFamilies=: {raw.strip()}")
    if server_pid is None:
        fail(f"the strace log never shows {binary} being executed")
    refused = sorted(set(used) - allowed - {"exit", "exit_group", "execve"})
    for name in refused:
        problems.append(f"system call {name} ({used[name]} times) is not allowed by SystemCallFilter=")
    if problems:
        fail("\n  ".join(["the traced server broke the unit's rules:"] + problems[:40]))
    print(f"{len(used)} distinct system calls, {sum(used.values())} in all, all allowed by SystemCallFilter=")
    print(f"{writes} file writes, all under {state}")


def main() -> None:
    commands = {
        "unit-env": cmd_unit_env,
        "unit-exec": cmd_unit_exec,
        "unit-get": cmd_unit_get,
        "dockerfile-env": cmd_dockerfile_env,
        "dockerfile-get": cmd_dockerfile_get,
        "compose-env": cmd_compose_env,
        "context": cmd_context,
        "syscalls": cmd_syscalls,
        "strace-audit": cmd_strace_audit,
    }
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        fail(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
