# Sourced by tools/test-all.sh: makes sure the programs the checks need are
# here, installing what is missing. Cargo-only parts (protoc) need nothing:
# they come from crates.
#
#   mdbook 0.5.4   `cargo install --locked` (pinned: 0.5 rejects unknown
#                  book.toml fields, so a different version may not build it)
#   mdbook-i18n-helpers 0.4.0   `cargo install --locked`: mdbook-gettext
#                  (the Chinese edition) and mdbook-xgettext (the POT), built
#                  for mdBook 0.5; with Debian's `gettext` (msgmerge, msgfmt)
#   zookeeper      Debian's package (3.8, on the installed Java 17); tests
#                  start their own server from its jars
#   chromium       Debian's package, for the book's browser check, with a CJK
#                  font (fonts-wqy-zenhei) so the book's Chinese terms render
#   graphviz       Debian's package, for tools/diagrams.sh --check; with
#                  fonts-liberation2, the fonts the diagrams are measured in

MDBOOK_VERSION=0.5.4
I18N_HELPERS_VERSION=0.4.0
export PATH="$HOME/.cargo/bin:$PATH"

need_root_for() {
    # $1: Debian package list. Installs as root, else says what to run.
    if [ "$(id -u)" = 0 ]; then
        echo "ensure-deps: installing Debian packages: $1"
        if [ -z "${APT_UPDATED:-}" ]; then
            apt-get update -q >/dev/null
            APT_UPDATED=1
        fi
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $1 >/dev/null
    else
        echo "ensure-deps: missing Debian packages: $1" >&2
        echo "ensure-deps: install them with: sudo apt-get install $1" >&2
        exit 1
    fi
}

if [ "$(mdbook --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]; then
    echo "ensure-deps: installing mdbook $MDBOOK_VERSION (takes a few minutes)"
    cargo install mdbook --version "$MDBOOK_VERSION" --locked --quiet
fi

if ! cargo install --list | grep -q "^mdbook-i18n-helpers v$I18N_HELPERS_VERSION:"; then
    echo "ensure-deps: installing mdbook-i18n-helpers $I18N_HELPERS_VERSION (takes a few minutes)"
    cargo install mdbook-i18n-helpers --version "$I18N_HELPERS_VERSION" --locked --quiet
fi
if ! command -v msgmerge >/dev/null || ! command -v msgattrib >/dev/null; then
    need_root_for gettext
fi

if [ ! -f /usr/share/java/zookeeper.jar ] || ! command -v java >/dev/null; then
    need_root_for zookeeper
fi

if [ -x tools/check_browser.sh ] && [ -z "${SKIP_BROWSER_CHECK:-}" ] && ! command -v chromium >/dev/null; then
    need_root_for chromium
fi
if [ -x tools/check_browser.sh ] && [ -z "${SKIP_BROWSER_CHECK:-}" ] && [ ! -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ]; then
    need_root_for fonts-wqy-zenhei
fi

if [ -x tools/diagrams.sh ] && { ! command -v dot >/dev/null ||
    [ "$(fc-match -f '%{family}' 'Liberation Sans')" != "Liberation Sans" ]; }; then
    need_root_for "graphviz fonts-liberation2"
fi
