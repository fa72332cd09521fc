// The front door's stats page (/) and Prometheus text (/metrics), for nginx's njs module (Debian's
// libnginx-mod-http-js, njs 0.7.9).
//
// Why this way: open-source nginx keeps no per-upstream counters (only the commercial API does), and njs 0.7
// has no shared memory between workers and no timers. So the front door writes two buffered logs on the tmpfs
// (nginx.conf, "The stats page's counts"): hits.log gets two bytes per cache hit answered 2xx, counted here by
// the file's size, and requests.log one short line per other request (the shield's refusals excepted: their
// counts come from shield.lua's shared dictionary through /shield). Every few seconds the container's health
// check renames both to <name>-<nanoseconds>.log, has nginx reopen its logs (SIGUSR1) and calls /fold, which
// adds the rotated files to totals.json and deletes them. A scrape reads the totals plus what is not folded
// yet: counters that survive worker restarts (not container restarts), a buffered write per 64 KB, a few
// seconds of lines on the tmpfs at most, no code run per request and no process besides nginx. Whether a
// server is up is asked live at each scrape: the app's writer serves its status file (docker/app/healthcheck),
// a standby does not listen, and a static replica answers /healthz.
import fs from 'fs';

const STATS_DIR = '/tmp/nginx/stats';
const TOTALS = STATS_DIR + '/totals.json';
const FOLDING = STATS_DIR + '/folding';          // exists while one scrape folds; it holds the claimed files
const SERVERS = '/tmp/nginx/rendered/servers.json';  // {"app": [...], "static": [...]}, by proxy-entrypoint
const STALE_FOLD_MS = 60000;                      // a fold older than this was cut short (its worker died)
const LIVE_LOGS = ['requests.log', 'hits.log'];  // what nginx writes now
const HIT_LINE_BYTES = 2;                         // ".\n", nginx.conf's log_format stats_hit
const REOPEN_MS = 3000;                           // a rotated file is complete once nginx has reopened its logs

function emptyTotals() {
    return {requests: 0, status: {}, cache: {}, shield: {}, servers: {}, writer: '', writerSince: 0,
            failovers: 0, lastFailover: 0, folded: [], since: Date.now()};
}

function readJson(path, fallback) {
    try {
        return JSON.parse(fs.readFileSync(path, 'utf8'));
    } catch (e) {
        return fallback;
    }
}

function listDir(path) {
    try {
        return fs.readdirSync(path).filter(name => /^(requests|hits)-\d+\.log$/.test(name)).sort();
    } catch (e) {
        return [];
    }
}

function add(counts, key, amount) {
    counts[key] = (counts[key] || 0) + amount;
}

function count(totals, status, cache, shield, amount) {
    totals.requests += amount;
    add(totals.status, status.charAt(0) + 'xx', amount);
    if (cache && cache !== '-') {
        add(totals.cache, cache, amount);
    }
    if (shield) {
        add(totals.shield, shield, amount);
    }
}

// A rotated or live file of either log: hits.log is counted by its size, requests.log line by line.
function accumulateFile(totals, path, tiers) {
    if (/hits[^/]*$/.test(path)) {
        count(totals, '2xx', 'HIT', '', Math.floor(fs.readFileSync(path).length / HIT_LINE_BYTES));
    } else {
        accumulate(totals, fs.readFileSync(path, 'utf8'), tiers);
    }
}

// One line: msec status cache "upstream_addr" "upstream_status" shield=reason
function parse(line) {
    const quoted = line.split('"');
    if (quoted.length < 5) {
        return null;
    }
    const head = quoted[0].trim().split(' ');
    const shield = quoted[4].trim().replace(/^shield=/, '');
    return {ms: Math.round(parseFloat(head[0]) * 1000), status: head[1], cache: head[2], addrs: quoted[1],
            codes: quoted[3], shield: shield === '-' ? '' : shield};
}

// Adds a file's lines to the totals; `tiers` maps ip:port to its tier.
function accumulate(totals, text, tiers) {
    const entries = [];
    // Lines of requests the door answered itself ("-" for the upstream: UPDATING, 429, 413, ...) need only
    // their status and cache status, counted here by that part of the line without parsing the rest.
    const answeredByTheDoor = {};
    text.split('\n').forEach(function (line) {
        const quote = line.indexOf('"');
        if (quote < 0) {
            return;
        }
        if (line.charAt(quote + 1) === '-' && line.charAt(quote + 2) === '"') {
            add(answeredByTheDoor, line.slice(line.indexOf(' ') + 1, quote), 1);
            return;
        }
        const entry = parse(line);
        if (entry !== null) {
            entries.push(entry);
        }
    });
    Object.keys(answeredByTheDoor).forEach(function (key) {
        const fields = key.split(' ');   // "status cache "
        count(totals, fields[0], fields[1], '', answeredByTheDoor[key]);
    });
    entries.sort((a, b) => a.ms - b.ms);
    entries.forEach(function (entry) {
        count(totals, entry.status, entry.cache, entry.shield, 1);
        // "a, b : c": every server tried, in order, with one status each.
        const addrs = entry.addrs.split(/\s*[,:]\s+/);
        const codes = entry.codes.split(/\s*[,:]\s+/);
        let answered = '';
        for (let i = 0; i < addrs.length; i++) {
            const server = addrs[i];
            if (!tiers[server]) {
                continue;   // an index loop: continue is fine
            }
            const counts = totals.servers[server] || (totals.servers[server] = {tries: 0, failures: 0, lastFailure: 0});
            counts.tries++;
            const code = parseInt(codes[i], 10);
            if (!(code < 500)) {   // 502 refused or reset, 504 timed out, "-" never answered
                counts.failures++;
                counts.lastFailure = entry.ms;
            } else {
                answered = server;
            }
        }
        if (answered && tiers[answered] === 'app' && answered !== totals.writer) {
            if (totals.writer) {
                totals.failovers++;
                totals.lastFailover = entry.ms;
            }
            totals.writer = answered;
            totals.writerSince = entry.ms;
        }
    });
}

// requests-<nanoseconds since the epoch>.log or hits-<...>.log, named by the health check when it rotated it.
function rotatedAt(name) {
    return parseInt(name.slice(name.indexOf('-') + 1, -'.log'.length), 10) / 1e6;
}

// Folds the rotated files into totals.json, unless another scrape is folding; never loses or doubles a line:
// files are claimed by moving them into FOLDING (mkdir is the lock), totals.json names the files it holds.
function fold(tiers) {
    try {
        fs.mkdirSync(FOLDING);
    } catch (e) {
        const started = readJson(FOLDING + '/started.json', 0);
        if (Date.now() - started < STALE_FOLD_MS) {
            return;   // another worker is folding
        }
    }
    fs.writeFileSync(FOLDING + '/started.json', JSON.stringify(Date.now()));
    const now = Date.now();
    listDir(STATS_DIR).forEach(function (name) {
        if (now - rotatedAt(name) > REOPEN_MS) {
            fs.renameSync(STATS_DIR + '/' + name, FOLDING + '/' + name);
        }
    });
    const kept = readJson(TOTALS, null);
    const totals = kept || emptyTotals();   // written at the first fold, so `since` is when counting began
    const claimed = listDir(FOLDING).filter(name => totals.folded.indexOf(name) < 0);
    if (claimed.length > 0 || kept === null) {
        claimed.forEach(function (name) {
            accumulateFile(totals, FOLDING + '/' + name, tiers);
        });
        totals.folded = claimed;
        fs.writeFileSync(TOTALS + '.tmp', JSON.stringify(totals));
        fs.renameSync(TOTALS + '.tmp', TOTALS);
    }
    listDir(FOLDING).forEach(function (name) {
        fs.unlinkSync(FOLDING + '/' + name);
    });
    fs.unlinkSync(FOLDING + '/started.json');
    fs.rmdirSync(FOLDING);
}

// The totals so far plus every line not folded yet.
function counters(tiers) {
    try {
        fold(tiers);
    } catch (e) {
        ngx.log(ngx.WARN, 'stats: folding failed: ' + e);
    }
    const totals = readJson(TOTALS, emptyTotals());
    listDir(FOLDING).filter(name => totals.folded.indexOf(name) < 0).forEach(function (name) {
        accumulateFile(totals, FOLDING + '/' + name, tiers);
    });
    listDir(STATS_DIR).concat(LIVE_LOGS).forEach(function (name) {
        try {
            accumulateFile(totals, STATS_DIR + '/' + name, tiers);
        } catch (e) {
            // a live log not written yet, or a rotated file a fold has just claimed
        }
    });
    return totals;
}

function keyValues(text) {
    const values = {};
    text.split('\n').forEach(function (line) {
        const at = line.indexOf('=');
        if (at > 0) {
            values[line.slice(0, at)] = line.slice(at + 1);
        }
    });
    return values;
}

// Asks every server now: the app's writer answers with its status, a standby refuses, a static replica
// answers /healthz.
// The shield's refusals (shield.lua counts them; they have no line in requests.log): "reason count" lines and
// "total count", each refusal a 4xx answer.
async function addShieldRefusals(r, totals) {
    const reply = await r.subrequest('/shield');
    reply.responseText.split('\n').forEach(function (line) {
        const fields = line.split(' ');   // njs 0.7 has no destructuring
        const amount = parseInt(fields[1], 10);
        if (fields[0] !== 'total' && amount > 0) {
            count(totals, '4xx', '', fields[0], amount);
        }
    });
}

async function probe(servers) {
    const probes = [];
    ['app', 'static'].forEach(function (tier) {
        (servers[tier] || []).forEach(function (server) {
            const path = tier === 'app' ? '/_companynews/status' : '/healthz';
            probes.push(ngx.fetch('http://' + server + path, {headers: {Host: 'stats'}})
                .then(reply => reply.text().then(body => ({tier: tier, server: server, ok: reply.status === 200,
                                                           body: body})))
                .catch(() => ({tier: tier, server: server, ok: false, body: ''})));
        });
    });
    const results = await Promise.all(probes);
    results.forEach(function (result) {
        result.state = result.tier === 'app' ? (result.ok ? 'writer' : 'not_serving') : (result.ok ? 'up' : 'down');
        result.status = result.tier === 'app' && result.ok ? keyValues(result.body) : {};
    });
    return results;
}

async function collect(r) {
    const servers = readJson(SERVERS, {app: [], static: []});
    const tiers = tiersOf(servers);
    const totals = counters(tiers);
    await addShieldRefusals(r, totals);
    const probes = await probe(servers);
    const writer = probes.find(p => p.tier === 'app' && p.ok);
    return {totals: totals, probes: probes, tiers: tiers, writer: writer ? writer.status : null,
            active: r.variables.connections_active};
}

function escapeLabel(value) {
    return String(value).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function metricsText(stats) {
    const lines = [];
    const metric = (name, type, help, samples) => {
        lines.push('# HELP ' + name + ' ' + help, '# TYPE ' + name + ' ' + type);
        samples.forEach(function (pair) {
            const labels = pair[0];
            const rendered = Object.keys(labels).map(k => k + '="' + escapeLabel(labels[k]) + '"').join(',');
            lines.push(name + (rendered ? '{' + rendered + '}' : '') + ' ' + pair[1]);
        });
    };
    const t = stats.totals;
    metric('companynews_requests_total', 'counter', 'Requests the front door answered, by status class.',
           Object.keys(t.status).map(k => [{code: k}, t.status[k]]));
    metric('companynews_cache_requests_total', 'counter', 'Requests answered through the caches, by cache status.',
           Object.keys(t.cache).map(k => [{status: k}, t.cache[k]]));
    metric('companynews_shield_refused_total', 'counter', 'Requests the shield refused, by reason.',
           Object.keys(t.shield).map(k => [{reason: k}, t.shield[k]]));
    const tierOf = stats.tiers;
    const servers = Object.keys(t.servers);
    metric('companynews_upstream_tries_total', 'counter', 'Requests sent to each upstream server.',
           servers.map(s => [{tier: tierOf[s] || '', server: s}, t.servers[s].tries]));
    metric('companynews_upstream_failures_total', 'counter',
           'Tries that failed (refused: a standby or a dead server; 5xx; timed out).',
           servers.map(s => [{tier: tierOf[s] || '', server: s}, t.servers[s].failures]));
    metric('companynews_upstream_last_failure_timestamp_seconds', 'gauge', 'When a try last failed.',
           servers.filter(s => t.servers[s].lastFailure).map(s => [{tier: tierOf[s] || '', server: s},
                                                                   t.servers[s].lastFailure / 1000]));
    metric('companynews_upstream_up', 'gauge', 'Whether the server answers now (app: only the writer; a standby does not listen).',
           stats.probes.map(p => [{tier: p.tier, server: p.server, state: p.state}, p.ok ? 1 : 0]));
    metric('companynews_writer_changes_total', 'counter', 'Failovers: times another app server started answering.',
           [[{}, t.failovers]]);
    if (stats.writer) {
        const w = stats.writer;
        metric('companynews_writer_accepting_posts', 'gauge', 'Whether the writer takes posts (its post gate).',
               [[{}, w.accepting_posts === 'yes' ? 1 : 0]]);
        metric('companynews_journal_blocked', 'gauge', 'Whether Prevayler has blocked every transaction.',
               [[{}, w.journal_blocked === 'yes' ? 1 : 0]]);
        metric('companynews_data_free_bytes', 'gauge', 'Free space of the data volume.', [[{}, w.data_free_kib * 1024]]);
        metric('companynews_data_size_bytes', 'gauge', 'Size of the data volume.', [[{}, w.data_size_kib * 1024]]);
        metric('companynews_data_free_floor_bytes', 'gauge', 'Free space below which posts are refused.',
               [[{}, w.free_floor_kib * 1024]]);
        metric('companynews_journal_last_write_timestamp_seconds', 'gauge', 'When a journal was last written.',
               [[{}, w.last_journal_write]]);
    }
    metric('companynews_active_connections', 'gauge', 'Client connections open now.', [[{}, stats.active]]);
    return lines.join('\n') + '\n';
}

function html(text) {
    return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function size(kib) {
    const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
    let value = Number(kib);
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
        value /= 1024;
        unit++;
    }
    return (value >= 100 ? Math.round(value) : Math.round(value * 10) / 10) + ' ' + units[unit];
}

function when(ms) {
    return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' : '-';
}

function table(headings, rows) {
    return '<table><tr>' + headings.map(h => '<th>' + html(h) + '</th>').join('') + '</tr>' +
        rows.map(row => '<tr>' + row.map(cell => '<td>' + html(cell) + '</td>').join('') + '</tr>').join('') +
        '</table>';
}

function pageHtml(stats) {
    const t = stats.totals;
    const serverRows = stats.probes.map(p => {
        const counts = t.servers[p.server] || {tries: 0, failures: 0, lastFailure: 0};
        const state = p.state === 'not_serving' ? 'not serving (standby, or down)' : p.state;
        return [p.tier, p.server, state, counts.tries, counts.failures, when(counts.lastFailure)];
    });
    const w = stats.writer;
    const disk = w ? [[size(w.data_free_kib), size(w.data_size_kib), size(w.free_floor_kib), w.accepting_posts,
                       w.journal_blocked, when(w.last_journal_write * 1000)]]
                   : [['no writer answers', '', '', 'no', '', '']];
    const counted = (counts) => Object.keys(counts).sort().map(k => [k, counts[k]]);
    return '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>companyNews front door</title>' +
        '<style>body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin-bottom:1.2em}' +
        'th,td{border:1px solid #bbb;padding:.3em .7em;text-align:left}th{background:#eee}h2{font-size:1.1em}</style>' +
        '</head><body><h1>companyNews front door</h1>' +
        '<p>Counting since ' + html(when(t.since)) + '. Active connections: ' + html(stats.active) +
        '. Requests: ' + t.requests + '. Failovers: ' + t.failovers + (t.failovers ? ' (last ' + html(when(t.lastFailover)) + ')' : '') +
        '. Prometheus text: <a href="metrics">/metrics</a>.</p>' +
        '<h2>Upstream servers</h2>' +
        table(['tier', 'server', 'now', 'requests', 'failures', 'last failure'], serverRows) +
        '<p>A standby refuses connections by design (it waits for the writer lock), so its tries count as failures.</p>' +
        '<h2>Data volume (from the writer)</h2>' +
        table(['free', 'size', 'floor', 'taking posts', 'journal blocked', 'last journal write'], disk) +
        '<h2>Answers by status</h2>' + table(['status', 'requests'], counted(t.status)) +
        '<h2>Caches</h2>' + table(['cache status', 'requests'], counted(t.cache)) +
        '<h2>Refused by the shield</h2>' + table(['reason', 'requests'], counted(t.shield)) +
        '</body></html>\n';
}

async function page(r) {
    const stats = await collect(r);
    r.headersOut['Content-Type'] = 'text/html; charset=utf-8';
    r.headersOut['Cache-Control'] = 'no-store';
    r.return(200, pageHtml(stats));
}

function tiersOf(servers) {
    const tiers = {};
    ['app', 'static'].forEach(function (tier) {
        (servers[tier] || []).forEach(function (server) {
            tiers[server] = tier;
        });
    });
    return tiers;
}

function foldNow(r) {
    try {
        fold(tiersOf(readJson(SERVERS, {app: [], static: []})));
    } catch (e) {
        ngx.log(ngx.WARN, 'stats: folding failed: ' + e);
    }
    r.return(204);
}

async function metrics(r) {
    const stats = await collect(r);
    r.headersOut['Content-Type'] = 'text/plain; version=0.0.4; charset=utf-8';
    r.headersOut['Cache-Control'] = 'no-store';
    r.return(200, metricsText(stats));
}

export default {page: page, metrics: metrics, foldNow: foldNow};
