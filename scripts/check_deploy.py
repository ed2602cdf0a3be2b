#!/usr/bin/env python3
"""Helpers for scripts/check-deploy.sh: parse the deployment files and check what they ask of the
binaries. Every check prints one line starting with PASS, FAIL or SKIP; check-deploy.sh counts them.

  check_deploy.py yaml                 every *.yaml / *.yml under deploy/ parses (all documents)
  check_deploy.py env-names            every EXECNET_* name in the deploy files is one we know
  check_deploy.py env-file FILE        FILE holds only VAR=value lines of known variables
  check_deploy.py invocations          list the execnet-broker / execnet-agent calls found
  check_deploy.py binaries BIN_DIR     each call's subcommand and --flags appear in --help;
                                       each /usr/local/bin/execnet-* named exists in BIN_DIR
  check_deploy.py grafana BIN_DIR [DASHBOARD]
                                       every metric name (execnet_*) in the Grafana dashboard's
                                       queries (default deploy/grafana/execnet-dashboard.json) is
                                       in a live /metrics scrape of a real broker and agent from
                                       BIN_DIR, after a few gateways ran through them

Calls are taken from the Dockerfile (RUN/CMD/ENTRYPOINT/HEALTHCHECK and comments), the compose
file and Kubernetes manifests (command, args, probes, healthchecks, and comments), the systemd
units (ExecStart= and comments), shell scripts, and the code in deploy/README.md and
README.md (Running across hosts).
"""

import json
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
DOCS = [os.path.join(DEPLOY, "README.md"), os.path.join(ROOT, "README.md")]

# The binaries whose command lines are checked, and the broker's subcommands.
CHECKED = ("execnet-broker", "execnet-agent")
BROKER_SUBCOMMANDS = ("serve", "keygen", "status")
# Every binary that deploy files may name under /usr/local/bin: the package's products, plus the
# key script the image installs.
PRODUCTS = ("execnet-broker", "execnet-agent", "execnet-worker", "taskserver")
SCRIPTS = ("execnet-make-keys",)

# Environment variables the binaries read (the CLI contract) and the ones the deploy files use
# for themselves (compose settings, the key script).
ENV_READ_BY_BINARIES = {
    "EXECNET_BROKER_BIND", "EXECNET_BROKER", "EXECNET_SECRET_KEY_FILE", "EXECNET_SERVER_KEY_FILE",
    "EXECNET_AUTHORIZED_KEYS_FILE", "EXECNET_AGENT_NAME", "EXECNET_AGENT_SLOTS", "EXECNET_DEBUG",
    "EXECNET_WORKER", "EXECNET_BROKER_HTTP_ADDRESS", "EXECNET_AGENT_HTTP_ADDRESS", "EXECNET_LOG_FORMAT",
    "EXECNET_BROKER_HTTP_TOKEN_FILE",
}
ENV_OF_DEPLOY_FILES = {"EXECNET_IMAGE", "EXECNET_PUBLISH", "EXECNET_BROKER_BIN", "EXECNET_PROMETHEUS_PUBLISH"}

# A token after which a binary's name is an argument, not a command (systemctl start X, ...).
NOT_A_COMMAND_AFTER = {
    "systemctl", "journalctl", "install", "cp", "scp", "rsync", "ls", "chmod", "chown", "file",
    "ldd", "strip", "rm", "mv", "which", "command", "type", "stat", "sha256sum", "tar",
}
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "\n", "|&", ";;", "`", "$("}


def out(status, message):
    print(f"{status}  {message}", flush=True)


def rel(path):
    return os.path.relpath(path, ROOT)


def deploy_files(extensions=None):
    found = []
    for directory, dirnames, filenames in os.walk(DEPLOY):
        dirnames[:] = sorted(d for d in dirnames if d not in ("keys",))
        for name in sorted(filenames):
            if extensions is None or name.endswith(extensions):
                found.append(os.path.join(directory, name))
    return found


def load_yaml_module():
    try:
        import yaml  # noqa: F401
        return yaml
    except ImportError:
        out("FAIL", "yaml: PyYAML is not importable (check-deploy.sh installs it with pip)")
        sys.exit(1)


# --------------------------------------------------------------------------------------------
# YAML


def cmd_yaml():
    yaml = load_yaml_module()
    failed = False
    files = deploy_files((".yaml", ".yml"))
    if not files:
        out("FAIL", "yaml: no YAML files under deploy/")
        return 1
    for path in files:
        try:
            with open(path, encoding="utf-8") as handle:
                documents = [d for d in yaml.safe_load_all(handle) if d is not None]
        except yaml.YAMLError as error:
            out("FAIL", f"yaml: {rel(path)}: {error}".replace("\n", " "))
            failed = True
            continue
        if not documents:
            out("FAIL", f"yaml: {rel(path)}: no documents")
            failed = True
            continue
        out("PASS", f"yaml: {rel(path)} ({len(documents)} document{'s' if len(documents) != 1 else ''})")
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------
# Command lines in the deploy files


def join_continued(lines):
    """Joins lines ending with a backslash to the next one."""
    joined, current = [], ""
    for line in lines:
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
        else:
            joined.append(current + stripped)
            current = ""
    if current:
        joined.append(current)
    return joined


def comment_commands(text):
    """Shell-ish text from '#' comment lines (usage examples), continuation lines joined."""
    lines = []
    for line in text.splitlines():
        match = re.match(r"^\s*#\s?(.*)$", line)
        lines.append(match.group(1) if match else "")
    return join_continued(lines)


def markdown_commands(text):
    """(lines of fenced shell code blocks, inline code spans) of a Markdown file. Blocks in other
    languages (swift, yaml, ini, ...) are read as prose."""
    blocks, spans = [], []
    in_block = False
    shell = False
    block = []
    prose = []
    for line in text.splitlines():
        fence = re.match(r"^\s*```\s*(\S*)", line)
        if fence:
            if in_block:
                (blocks if shell else spans).extend(join_continued(block))
                block = []
            else:
                shell = fence.group(1) in ("", "sh", "bash", "shell", "console", "dockerfile")
            in_block = not in_block
            prose.append("")
            continue
        if in_block:
            block.append(re.sub(r"^\s*\$\s+", "", line))
        else:
            prose.append(line)
    # Inline code may wrap across the lines of a paragraph.
    for paragraph in re.split(r"\n\s*\n", "\n".join(prose)):
        spans.extend(span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", paragraph))
    return blocks, spans


def dockerfile_commands(text):
    commands = []
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    for instruction in join_continued(lines):
        match = re.match(r"^\s*(RUN|CMD|ENTRYPOINT|HEALTHCHECK)\s+(.*)$", instruction, re.I)
        if not match:
            continue
        body = match.group(2)
        if match.group(1).upper() == "HEALTHCHECK":
            body = re.sub(r"^(--\S+\s+)*", "", body)
            body = re.sub(r"^CMD\s+", "", body)
        body = body.strip()
        if body.startswith("["):
            try:
                commands.append(shlex.join(json.loads(body)))
                continue
            except ValueError:
                pass
        commands.append(body)
    return commands


def yaml_commands(text):
    yaml = load_yaml_module()
    commands = []

    def as_words(value):
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            return [str(item) for item in value]
        return []

    def walk(node):
        if isinstance(node, dict):
            # A container (Kubernetes) or a service (compose): its command line.
            words = []
            for key in ("entrypoint", "command", "args"):
                value = node.get(key)
                if isinstance(value, list):
                    words.extend(str(item) for item in value)
                elif isinstance(value, str):
                    commands.append(value)
            if words:
                commands.append(shlex.join(words))
            # Compose healthcheck test: ["CMD", ...] or ["CMD-SHELL", "..."] or a string.
            test = node.get("test")
            if isinstance(test, list) and test:
                if test[0] == "CMD-SHELL":
                    commands.extend(as_words(test[1:]))
                else:
                    commands.append(shlex.join([str(w) for w in test if w not in ("CMD", "NONE")]))
            elif isinstance(test, str):
                commands.append(test)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for document in yaml.safe_load_all(text):
        walk(document)
    return commands


def systemd_commands(text):
    commands = []
    lines = [line for line in text.splitlines() if not line.lstrip().startswith(("#", ";"))]
    for line in join_continued(lines):
        match = re.match(r"^\s*Exec\w+=\s*[-@:+!]*(.*)$", line)
        if match and match.group(1).strip():
            commands.append(match.group(1))
    return commands


def collect_commands():
    """(file, command text, strict) from every deploy file and the deployment docs. Commands
    (instructions, container commands, ExecStart=, code blocks, script lines) are strict: a word
    after execnet-broker is a subcommand. Comments and inline code may be prose: there only known
    subcommands and --flags count as a call."""
    found = []
    for path in deploy_files():
        name = os.path.basename(path)
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except UnicodeDecodeError:
            continue
        strict, lenient = [], []
        if name.endswith((".yaml", ".yml")):
            strict, lenient = yaml_commands(text), comment_commands(text)
        elif name == "Dockerfile" or name.endswith(".Dockerfile"):
            strict, lenient = dockerfile_commands(text), comment_commands(text)
        elif name.endswith((".service", ".conf", ".conf.example")):
            strict, lenient = systemd_commands(text), comment_commands(text)
        elif name.endswith(".md"):
            strict, lenient = markdown_commands(text)
        elif name.endswith(".sh"):
            code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
            strict, lenient = join_continued(code), comment_commands(text)
        else:
            lenient = comment_commands(text)
        found.extend((path, command, True) for command in strict)
        found.extend((path, command, False) for command in lenient)
    for path in DOCS:
        if os.path.exists(path) and not path.startswith(DEPLOY + os.sep):
            with open(path, encoding="utf-8") as handle:
                strict, lenient = markdown_commands(handle.read())
            found.extend((path, command, True) for command in strict)
            found.extend((path, command, False) for command in lenient)
    return found


def tokenize(command):
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()`")
        lexer.whitespace_split = True
        lexer.commenters = ""
        return list(lexer)
    except ValueError:
        return command.split()


def binary_of(token):
    """The checked binary a token runs, if it is one: a bare name or a path to it."""
    for name in CHECKED:
        if token == name:
            return name
        if token.endswith("/" + name) and token.startswith(("/", "./", ".build", "$", "${")):
            if "=" not in token.split("/")[0]:
                return name
    return None


def find_invocations(command, strict=True, depth=0):
    """[(binary, subcommand or None, [flags], text)] for the calls in one command line."""
    found = []
    tokens = tokenize(command)
    for index, token in enumerate(tokens):
        # A quoted script (sh -c '...') is a command line of its own.
        if depth < 3 and any(c.isspace() for c in token) and "execnet-" in token:
            found.extend(find_invocations(token, strict, depth + 1))
            continue
        binary = binary_of(token)
        if binary is None:
            continue
        # Command position: not an argument of systemctl, install, cp, ...
        start = index
        while start > 0 and tokens[start - 1] not in SEPARATORS:
            start -= 1
        before = tokens[start:index]
        if any(os.path.basename(t) in NOT_A_COMMAND_AFTER for t in before):
            continue
        # kubectl names deployments execnet-agent; only `kubectl exec ... -- execnet-...` runs it.
        if "kubectl" in before and "--" not in before:
            continue
        words = []
        for word in tokens[index + 1:]:
            if word in SEPARATORS or word.startswith("#") or word in (">", ">>", "2>", "<") or word.startswith((">", "2>")):
                break
            words.append(word)
        subcommand = None
        if binary == "execnet-broker" and words and not words[0].startswith("-"):
            candidate = words[0]
            if re.fullmatch(r"[a-z][a-z0-9-]*", candidate) and candidate not in PRODUCTS:
                if strict or candidate in BROKER_SUBCOMMANDS:
                    subcommand = candidate
        flags = sorted({w.split("=", 1)[0] for w in words if w.startswith("--") and len(w) > 2})
        if subcommand is None and not flags:
            continue  # a mention (a file name, a unit name), not a call
        text = " ".join([token] + words)
        found.append((binary, subcommand, flags, text))
    return found


def all_invocations():
    invocations = []
    for path, command, strict in collect_commands():
        for binary, subcommand, flags, text in find_invocations(command, strict):
            invocations.append({"file": rel(path), "binary": binary, "subcommand": subcommand,
                                "flags": flags, "text": text})
    return invocations


def cmd_invocations():
    for item in all_invocations():
        sub = f" {item['subcommand']}" if item["subcommand"] else ""
        print(f"{item['file']}: {item['binary']}{sub} {' '.join(item['flags'])}")
    return 0


# --------------------------------------------------------------------------------------------
# Environment variable names


def cmd_env_names():
    known = ENV_READ_BY_BINARIES | ENV_OF_DEPLOY_FILES
    failed = False
    seen = set()
    paths = deploy_files() + [p for p in DOCS if os.path.exists(p)]
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except UnicodeDecodeError:
            continue
        for name in sorted(set(re.findall(r"\bEXECNET_[A-Z0-9_]+\b", text))):
            seen.add(name)
            if name not in known:
                out("FAIL", f"env: {rel(path)} uses {name}, which no binary reads and no deploy file sets")
                failed = True
    if not failed:
        out("PASS", f"env: the {len(seen)} EXECNET_* names in deploy files are known ({', '.join(sorted(seen))})")
    return 1 if failed else 0


def cmd_env_file(path):
    failed = False
    count = 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", stripped)
            if not match:
                out("FAIL", f"env file: {rel(path)}:{number}: not VAR=value: {stripped}")
                failed = True
                continue
            if match.group(1) not in ENV_READ_BY_BINARIES:
                out("FAIL", f"env file: {rel(path)}:{number}: {match.group(1)} is not read by the binaries")
                failed = True
            count += 1
    if not failed:
        out("PASS", f"env file: {rel(path)} ({count} variables, all read by the binaries)")
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------
# The binaries


def run_help(argv):
    try:
        result = subprocess.run(argv + ["--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, timeout=20, text=True)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, str(error)
    if result.returncode != 0:
        return None, f"exit {result.returncode}: {result.stdout.strip()[:300]}"
    return result.stdout, None


def flag_in_help(flag, help_text):
    return re.search(r"(^|[^A-Za-z0-9-])" + re.escape(flag) + r"($|[^A-Za-z0-9-])", help_text, re.M) is not None


def cmd_binaries(bin_dir):
    failed = False
    bin_dir = os.path.abspath(bin_dir)

    # Every execnet binary the files name under /usr/local/bin is a product we build.
    named = set()
    for path in deploy_files() + [p for p in DOCS if os.path.exists(p)]:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except UnicodeDecodeError:
            continue
        named.update(re.findall(r"/usr/local/bin/((?:execnet-[a-z0-9-]+)|taskserver)\b", text))
    dockerfile = os.path.join(DEPLOY, "Dockerfile")
    if os.path.exists(dockerfile):
        with open(dockerfile, encoding="utf-8") as handle:
            match = re.search(r'ARG PRODUCTS="([^"]*)"', handle.read())
        if match:
            named.update(match.group(1).split())
    for name in sorted(named | set(PRODUCTS)):
        if name in SCRIPTS:
            continue
        path = os.path.join(bin_dir, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            out("PASS", f"binary: {name} is in {rel(bin_dir) if bin_dir.startswith(ROOT) else bin_dir}")
        else:
            out("FAIL", f"binary: {name} is not in {bin_dir} (swift build [-c release] makes it; or set BIN_DIR)")
            failed = True

    # Help texts: execnet-agent, execnet-broker and each broker subcommand used.
    invocations = all_invocations()
    helps = {}

    def help_for(binary, subcommand):
        key = (binary, subcommand)
        if key not in helps:
            argv = [os.path.join(bin_dir, binary)] + ([subcommand] if subcommand else [])
            if not os.access(argv[0], os.X_OK):
                helps[key] = (None, "binary missing")
            else:
                helps[key] = run_help(argv)
        return helps[key]

    keys = sorted({(i["binary"], i["subcommand"]) for i in invocations}, key=lambda k: (k[0], k[1] or ""))
    for binary in CHECKED:
        if (binary, None) not in keys:
            keys.insert(0, (binary, None))
    for binary, subcommand in keys:
        label = binary + (f" {subcommand}" if subcommand else "")
        text, error = help_for(binary, subcommand)
        if text is None:
            out("FAIL", f"help: `{label} --help` failed: {error}")
            failed = True
            continue
        used = sorted({f for i in invocations if i["binary"] == binary and i["subcommand"] == subcommand
                       for f in i["flags"]} - {"--help"})
        missing = [f for f in used if not flag_in_help(f, text)]
        if missing:
            for flag in missing:
                where = sorted({i["file"] for i in invocations if i["binary"] == binary
                                and i["subcommand"] == subcommand and flag in i["flags"]})
                out("FAIL", f"help: {label} has no {flag} in its --help (used in {', '.join(where)})")
            failed = True
        else:
            out("PASS", f"help: {label} --help lists {', '.join(used) if used else 'its usage'}")
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------
# The Grafana dashboard against a live scrape.

DASHBOARD = os.path.join(DEPLOY, "grafana", "execnet-dashboard.json")
METRIC_NAME = re.compile(r"\bexecnet_[a-zA-Z0-9_]+")


def dashboard_queries(node):
    """Every PromQL text in a dashboard: panel targets' `expr` and query variables' queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, str) and node.get("type") == "query":
                yield value
            else:
                yield from dashboard_queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_queries(item)


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port, path="/metrics"):
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except OSError:
        return None, ""


def exposed_names(body):
    """The metric names of a Prometheus text body: its TYPE/HELP lines and its samples."""
    names = set()
    for line in body.splitlines():
        if line.startswith("# TYPE ") or line.startswith("# HELP "):
            parts = line.split()
            if len(parts) >= 3:
                names.add(parts[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def cmd_grafana(bin_dir, dashboard_path=DASHBOARD):
    import tempfile
    import time
    label = rel(dashboard_path)
    try:
        with open(dashboard_path) as f:
            dashboard = json.load(f)
    except (OSError, ValueError) as error:
        out("FAIL", f"grafana: {label} does not load: {error}")
        return 1
    queries = list(dashboard_queries(dashboard))
    used = sorted({name for query in queries for name in METRIC_NAME.findall(query)})
    nameless = [query for query in queries if not METRIC_NAME.search(query)]
    if not queries or nameless:
        out("FAIL", f"grafana: {label} has {len(queries)} queries; without an execnet_* metric: {nameless}")
        return 1
    binaries = ["execnet-broker", "execnet-agent", "execnet-bench", "ExecnetBenchWorker"]
    missing = [b for b in binaries if not os.access(os.path.join(bin_dir, b), os.X_OK)]
    if missing:
        out("SKIP", f"grafana: {', '.join(missing)} not built in {bin_dir}; the {len(used)} metric names were not checked")
        return 0
    work = tempfile.mkdtemp(prefix="execnet-grafana-")
    broker_http, agent_http = free_port(), free_port()
    processes = []
    try:
        broker_out = open(os.path.join(work, "broker.out"), "w+")
        processes.append(subprocess.Popen(
            [os.path.join(bin_dir, "execnet-broker"), "serve", "--bind", "tcp://127.0.0.1:*", "--log-level", "error",
             "--http-address", f"127.0.0.1:{broker_http}", "--load-report-interval", "0.2", "--shutdown-grace", "1"],
            stdout=broker_out, stderr=subprocess.DEVNULL))
        endpoint = None
        deadline = time.monotonic() + 30
        while endpoint is None and time.monotonic() < deadline:
            broker_out.seek(0)
            found = re.search(r"listening on (\S+)", broker_out.read())
            endpoint = found.group(1) if found else None
            time.sleep(0.1)
        if endpoint is None:
            out("FAIL", "grafana: execnet-broker did not start")
            return 1
        worker = os.path.join(bin_dir, "ExecnetBenchWorker")
        processes.append(subprocess.Popen(
            [os.path.join(bin_dir, "execnet-agent"), "--connect", endpoint, "--name", "grafana-check", "--slots", "4",
             "--allow", worker, "--log-level", "error", "--http-address", f"127.0.0.1:{agent_http}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        while scrape(agent_http, "/readyz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        # A few gateways through them: spawns, exits, a client's gateways.
        workload = subprocess.run(
            [os.path.join(bin_dir, "execnet-bench"), "runtime", "--broker", endpoint, "--worker", worker,
             "--figure", "startup", "--startup-samples", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        if workload.returncode != 0:
            out("FAIL", f"grafana: the workload through the broker failed: {workload.stdout[-500:]}")
            return 1
        exposed = set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            exposed = exposed_names(scrape(broker_http)[1]) | exposed_names(scrape(agent_http)[1])
            if set(used) <= exposed:
                break
            time.sleep(0.25)
        absent = [name for name in used if name not in exposed]
        if absent:
            out("FAIL", f"grafana: {label} queries metrics that a live broker and agent do not export: {', '.join(absent)}")
            return 1
        out("PASS", f"grafana: all {len(used)} metric names in {label}'s {len(queries)} queries are in a live scrape "
                    f"of execnet-broker and execnet-agent")
        return 0
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        subprocess.run(["rm", "-rf", work])


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command = argv[1]
    if command == "yaml":
        return cmd_yaml()
    if command == "env-names":
        return cmd_env_names()
    if command == "env-file" and len(argv) == 3:
        return cmd_env_file(argv[2])
    if command == "invocations":
        return cmd_invocations()
    if command == "binaries" and len(argv) == 3:
        return cmd_binaries(argv[2])
    if command == "grafana" and len(argv) in (3, 4):
        return cmd_grafana(*argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
