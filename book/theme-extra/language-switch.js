// The language switcher (issue #16): a link in the menu bar from every page
// to the same page in the other edition. The English book is built to
// book/build/, the Chinese one to book/build/zh-CN/ (tools/i18n.sh build),
// so a page's twin is one directory down or up from the book's root. Only
// relative URLs: it works from a web server, from file:// and offline.
(function () {
    'use strict';
    const EDITIONS = {
        // this edition's language: [the other's directory from this root, its label, its language]
        'en': ['zh-CN/', '中文', 'zh-CN'],
        'zh-CN': ['../', 'English', 'en'],
    };
    const here = document.documentElement.lang;
    const other = EDITIONS[here];
    if (!other) return;
    const buttons = document.querySelector('#mdbook-menu-bar .right-buttons, #menu-bar .right-buttons');
    if (!buttons) return;

    // mdBook sets `path_to_root` on every page ("" or "../" ...); the 404
    // page gets the site URL instead, an absolute path.
    let root;
    try {
        // "" means this directory: new URL("", page) would be the page itself.
        root = new URL((typeof path_to_root === 'string' && path_to_root) || './', location.href);
    } catch (e) {
        return;
    }
    let page = '';
    if (location.href.startsWith(root.href)) {
        page = location.href.slice(root.href.length).split('#')[0].split('?')[0];
    }
    if (page === '' || page.endsWith('/')) page += 'index.html';
    // No #fragment: heading ids come from the headings' text, so they differ
    // between the editions.
    const target = new URL(other[0] + page, root);

    const link = document.createElement('a');
    link.id = 'language-switch';
    link.href = target.href;
    link.hreflang = other[2];
    link.lang = other[2];
    link.title = here === 'en' ? '阅读本页的中文版' : 'Read this page in English';
    link.setAttribute('aria-label', link.title);
    link.textContent = other[1];
    link.style.fontSize = '1.4rem';
    link.style.fontWeight = 'bold';
    link.style.padding = '0 10px';
    link.style.textDecoration = 'none';
    buttons.insertBefore(link, buttons.firstChild);
})();
