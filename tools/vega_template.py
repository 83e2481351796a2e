"""Build DVC's HTML template for `dvc plots show` with vega, vega-lite and vega-embed inlined
from their npm packages, so the page renders offline (DVC's own template loads them from a
CDN). `make vega-template` fetches the packages with `npm pack` and runs this.

    python tools/vega_template.py vega-5.33.1.tgz vega-lite-5.23.0.tgz vega-embed-6.29.0.tgz \
        -o .dvc/plots/offline.html

The template has no `{scripts}` placeholder: that is where DVC would put its CDN tags.
"""

from __future__ import annotations

import argparse
import json
import re
import tarfile
from pathlib import Path

# the packages in the order a page must load them, and each one's browser build
BUILDS = {"vega": "build/vega.min.js", "vega-lite": "build/vega-lite.min.js",
          "vega-embed": "build/vega-embed.min.js"}

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <meta charset="utf-8">
    <title>DVC plots (offline)</title>
{scripts}
    <style>
        body {{ font-family: sans-serif; }}
        table {{ border-spacing: 15px; }}
        img {{ max-width: 100%; }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def package_files(archive: Path) -> tuple[str, str, str, str]:
    """(name, version, minified build, licence) from an `npm pack` tarball."""
    with tarfile.open(archive) as tar:
        def read(member: str) -> str:
            file = tar.extractfile(f"package/{member}")
            if file is None:
                raise SystemExit(f"{archive}: no package/{member}")
            return file.read().decode()

        manifest = json.loads(read("package.json"))
        name = manifest["name"]
        if name not in BUILDS:
            raise SystemExit(f"{archive}: {name} is not one of {', '.join(BUILDS)}")
        names = tar.getnames()
        licence = (read("LICENSE") if "package/LICENSE" in names
                   else f"License: {manifest.get('license', 'see the package')}")
        return name, manifest["version"], read(BUILDS[name]), licence


def script(name: str, version: str, code: str, licence: str) -> str:
    if re.search(r"</script", code, re.IGNORECASE):  # would end the inline element early
        raise SystemExit(f"{name} {version}: its build contains '</script'")
    notice = licence.strip().replace("*/", "* /")
    return f"    <script>/* {name} {version} (npm)\n{notice}\n*/\n{code}\n    </script>"


def build(archives: list[Path]) -> str:
    found = {name: (version, code, licence)
             for name, version, code, licence in map(package_files, archives)}
    missing = [name for name in BUILDS if name not in found]
    if missing:
        raise SystemExit(f"missing package(s): {', '.join(missing)}")
    return PAGE.format(scripts="\n".join(script(name, *found[name]) for name in BUILDS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("archives", nargs="+", type=Path, help="npm pack tarballs")
    parser.add_argument("-o", "--output", type=Path, required=True)
    options = parser.parse_args()
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(build(options.archives))
    print(f"wrote {options.output}")


if __name__ == "__main__":
    main()
