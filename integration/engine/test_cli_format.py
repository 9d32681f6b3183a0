"""`cryo` speaks the docker CLI's --format templates (issue 13): ps, images, network ls,
inspect -f, table headers, and docker's template errors, against a real cryod (the
`cryo_env` fixture of test_cryo_cli: its own daemon, cleaned up even when a test fails)."""

import uuid

from test_cryo_cli import cryo_env  # noqa: F401  (the fixture)


def test_ps_images_inspect_formats(cryo_env):  # noqa: F811
    cryo = cryo_env["cryo"]
    name = "fmt-" + uuid.uuid4().hex[:8]
    try:
        cid = cryo.ok("run", "-d", "--name", name, "busybox", "sleep", "300").stdout.strip()

        r = cryo.ok("ps", "--format", "{{.Names}} {{.Status}}")
        line = [l for l in r.stdout.splitlines() if l.startswith(name + " ")]
        assert len(line) == 1 and line[0].startswith(name + " Up "), r.stdout

        r = cryo.ok("ps", "--format", "{{.ID}}|{{.State}}|{{.Names | upper}}")
        assert f"{cid[:12]}|running|{name.upper()}" in r.stdout.splitlines(), r.stdout

        r = cryo.ok("inspect", "-f", "{{.State.Running}}", name)
        assert r.stdout == "true\n"
        r = cryo.ok("inspect", "--format", "{{.Id}} {{.Name}} {{.Config.Image}}", name)
        assert r.stdout == f"{cid} /{name} busybox\n"
        r = cryo.ok("inspect", "-f", "{{range .Config.Cmd}}[{{.}}]{{end}}", name)
        assert r.stdout == "[sleep][300]\n"

        r = cryo.ok("images", "--format", "{{.Repository}}:{{.Tag}}")
        assert "busybox:latest" in r.stdout.splitlines(), r.stdout
        r = cryo.ok("image", "inspect", "-f", "{{.Id}}", "busybox")
        assert r.stdout.startswith("sha256:"), r.stdout
        r = cryo.ok("network", "inspect", "-f", "{{.Name}}", "bridge")
        assert r.stdout.strip() in ("bridge", "cryo0"), r.stdout

        # table: docker's header row, tab-aligned columns (minimum width 10, padding 3).
        r = cryo.ok("ps", "--format", r"table {{.Names}}\t{{.State}}")
        lines = r.stdout.splitlines()
        assert lines[0].startswith("NAMES") and lines[0].rstrip().endswith("STATE"), r.stdout
        row = [l for l in lines if l.startswith(name)]
        assert len(row) == 1, r.stdout
        assert row[0].index("running") == lines[0].index("STATE") == max(10, len(name) + 3), r.stdout

        # Template errors: docker's messages and exit codes.
        r = cryo("ps", "--format", "{{.Names")
        assert r.returncode == 1 and r.stderr == "failed to parse template: template: :1: unclosed action\n", r.stderr
        r = cryo("ps", "--format", "{{.Nope}}")
        assert r.returncode == 1 and "can't evaluate field Nope in type *formatter.ContainerContext" in r.stderr, r.stderr
        r = cryo("inspect", "-f", "{{.State", name)
        assert (r.returncode, r.stdout) == (64, "") and r.stderr == "template parsing error: template: :1: unclosed action\n", r.stderr
        r = cryo("inspect", "-f", "{{.Nope}}", name)
        assert r.returncode == 1 and 'map has no entry for key "Nope"' in r.stderr, r.stderr
    finally:
        cryo("rm", "-f", name, timeout=60)
