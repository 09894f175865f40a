// Opens every page of the built book in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core) and fails when a page
// throws a JavaScript error, logs a console error, loads a resource that
// fails, shows a broken image, has (almost) no text, or lacks the language
// switcher's link to the same page in the other edition (issue #16).
//
//   node check.mjs <book/build> <screenshot.png> [chapter[,chapter...]] [edition]
//
// edition: `en` (default: the pages of book/build/ outside the translated
// editions' folders) or a translated edition's language, `zh-CN` (the pages
// of book/build/zh-CN/). Chapters are paths inside the edition; with more
// than one, each screenshot is <screenshot>-<chapter>.png.
//
// The whole site (book/build/, both editions) is served from this process on
// 127.0.0.1 and a free port, so the check needs no network and no other
// server, and the 404 pages find their files as they would when deployed.
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { readFile, readdir, stat } from 'node:fs/promises';
import { extname, join, relative, resolve } from 'node:path';

const [buildDir, screenshotPath, chapterList = 'steps/07-dispatch.html', edition = 'en'] = process.argv.slice(2);
if (!buildDir || !screenshotPath) {
  console.error('usage: node check.mjs <book/build> <screenshot.png> [chapter.html[,...]] [en|zh-CN]');
  process.exit(2);
}
const root = resolve(buildDir);
// Translated editions live in folders of the English book's build.
const TRANSLATIONS = ['zh-CN'];
if (edition !== 'en' && !TRANSLATIONS.includes(edition)) {
  console.error(`unknown edition ${edition}`);
  process.exit(2);
}
const prefix = edition === 'en' ? '' : edition + '/';
const chapters = chapterList.split(',').map((chapter) => prefix + chapter);
const shotFor = (chapter) => chapters.length === 1 ? screenshotPath
  : screenshotPath.replace(/\.png$/, '') + '-' + chapter.slice(prefix.length).replace(/\.html$/, '').replace(/\//g, '-') + '.png';
// The page a page's language switcher must link to.
const twinOf = (name) => edition === 'en' ? 'zh-CN/' + name : name.slice(prefix.length);
const types = {
  '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.json': 'application/json', '.woff2': 'font/woff2', '.woff': 'font/woff',
  '.ttf': 'font/ttf', '.ico': 'image/x-icon', '.txt': 'text/plain',
};

const server = createServer(async (req, res) => {
  // Chromium asks every origin for /favicon.ico on its own; mdBook's icons
  // are favicon-*.png/svg, linked from each page. Not a book defect.
  if (req.url === '/favicon.ico') {
    res.writeHead(204);
    res.end();
    return;
  }
  const path = resolve(root, '.' + decodeURIComponent(new URL(req.url, 'http://x').pathname));
  try {
    if (!path.startsWith(root)) throw new Error('outside the book');
    const file = (await stat(path)).isDirectory() ? join(path, 'index.html') : path;
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
    res.end(body);
  } catch {
    res.writeHead(404);
    res.end('not found');
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}/`;

async function htmlFiles(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await htmlFiles(full)));
    else if (entry.name.endsWith('.html')) out.push(relative(root, full));
  }
  return out.sort();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
const pages = (await htmlFiles(root)).filter((name) => edition === 'en'
  ? !TRANSLATIONS.some((lang) => name.startsWith(lang + '/'))
  : name.startsWith(prefix));
const lang = edition;
for (const name of pages) {
  const page = await browser.newPage();
  const say = (what) => problems.push(`${name}: ${what}`);
  page.on('pageerror', (error) => say(`JavaScript error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') say(`console error: ${message.text()} (${message.location().url})`);
  });
  page.on('requestfailed', (request) => say(`request failed: ${request.url()}`));
  page.on('response', (response) => {
    // 404.html is meant to be a 404 page; everything it loads must still work.
    if (response.status() >= 400) say(`HTTP ${response.status()} for ${response.url()}`);
  });
  await page.goto(base + name, { waitUntil: 'load' });
  const found = await page.evaluate(() => ({
    text: (document.querySelector('main') ?? document.body).innerText.trim().length,
    broken: [...document.images].filter((img) => !img.complete || img.naturalWidth === 0).map((img) => img.src),
    lang: document.documentElement.lang,
    switchTo: document.getElementById('language-switch')?.href ?? null,
  }));
  if (found.lang !== lang) say(`<html lang="${found.lang}">, expected ${lang}`);
  // toc.html is the no-JavaScript table of contents, without a menu bar.
  if (!name.endsWith('toc.html')) {
    if (!found.switchTo) {
      say('no language switcher (#language-switch)');
    } else {
      const target = new URL(found.switchTo);
      const want = new URL(twinOf(name), base);
      if (target.origin + target.pathname !== want.href) {
        say(`language switcher links to ${target.pathname}, expected /${twinOf(name)}`);
      } else {
        try {
          await stat(join(root, twinOf(name)));
        } catch {
          say(`language switcher links to /${twinOf(name)}, which is not built (tools/i18n.sh build builds both editions)`);
        }
      }
    }
  }
  for (const src of found.broken) say(`image did not load: ${src}`);
  // toc.html is mdBook's no-JavaScript table of contents: it has no <main>.
  if (found.text < 40 && !name.endsWith('toc.html')) say(`page is (nearly) empty: ${found.text} characters`);
  if (chapters.includes(name)) {
    // A chapter with a diagram is photographed at its first diagram.
    await page.evaluate(() => document.querySelector('main img')?.scrollIntoView({ block: 'center' }));
    await page.screenshot({ path: shotFor(name), fullPage: false });
  }
  await page.close();
}
await browser.close();
server.close();

for (const chapter of chapters) {
  if (!pages.includes(chapter)) problems.push(`screenshot chapter ${chapter} is not in the book`);
}
if (problems.length) {
  console.error(`browser check: ${problems.length} problems in ${pages.length} pages:`);
  for (const problem of problems) console.error('  ' + problem);
  process.exit(1);
}
console.log(`browser check (${edition}): ${pages.length} pages open cleanly in Chromium, each with its language switcher; ` +
  `screenshots: ${chapters.map((chapter) => `${chapter} in ${shotFor(chapter)}`).join(', ')}`);
