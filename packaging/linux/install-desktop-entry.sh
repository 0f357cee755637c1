#!/bin/sh
# Add LLM Training Studio to this user's application menu (no root needed; run it again after moving
# the folder). Writes ~/.local/share/applications/llm-studio.desktop pointing at this folder's
# executable and installs the icon into the hicolor theme. `--remove` takes both away again.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
apps="$data/applications"
icons="$data/icons/hicolor/256x256/apps"
if [ "${1:-}" = "--remove" ]; then
    rm -f "$apps/llm-studio.desktop" "$icons/llm-studio.png"
    echo "removed the LLM Training Studio menu entry"
    exit 0
fi
mkdir -p "$apps" "$icons"
cp "$here/llm-studio.png" "$icons/llm-studio.png"
sed -e "s|^Exec=llm-studio|Exec=\"$here/llm-studio\"|" -e "s|^Icon=llm-studio|Icon=$icons/llm-studio.png|" \
    "$here/llm-studio.desktop" > "$apps/llm-studio.desktop"
chmod +x "$apps/llm-studio.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" >/dev/null 2>&1 || true
echo "added LLM Training Studio to the application menu ($apps/llm-studio.desktop)"
