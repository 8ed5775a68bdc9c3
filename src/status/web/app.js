// plantgate dashboard: renders /api/events (server-sent events) and /api/devices. No framework, no
// download at runtime: everything is served by the gateway itself. One vocabulary throughout:
// a point is one line in InfluxDB (a measurement, tags, fields and a time).
(() => {
  'use strict';
  const $ = (s) => document.querySelector(s);
  const fmtAge = (ms) => (ms == null ? '–' : ms < 1500 ? `${Math.round(ms)} ms` : ms < 90_000 ? `${(ms / 1000).toFixed(1)} s` : ms < 5_400_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`);
  const fmtNum = (n) => (n == null ? '–' : Number(n).toLocaleString('en-US', { maximumFractionDigits: 1 }));
  const fmtBytes = (b) => (b < 1024 ? `${b} B` : b < 1048576 ? `${(b / 1024).toFixed(1)} KiB` : b < 1073741824 ? `${(b / 1048576).toFixed(1)} MiB` : `${(b / 1073741824).toFixed(2)} GiB`);
  const fmtTime = (t) => new Date(t).toLocaleTimeString();
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const state = (s) => `<span class="state s-${esc(s)}">${esc(s)}</span>`;
  const sum = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);
  const HEALTHY = new Set(['running', 'ready']);

  const INDICATORS = {
    nc_rate: 'NC rate of key processes', nc_rate_pooled: 'NC rate (pooled)', robot_density: 'Robots reporting per 10,000 employees',
    robot_density_active: 'Robots active per 10,000', robot_density_installed: 'Robots installed per 10,000 (registry)',
    robots_reporting: 'Robots reporting', robots_active: 'Robots active', internet_access: 'Industrial-internet access (regulated)',
    networked_share: 'Networked share of digital equipment', key_links_digitalised: 'Key business links digitalised',
    rd_design_tools: 'Digital R&D design tools', networked_collaboration: 'Networked collaboration',
  };
  const BARS = ['nc_rate', 'robot_density', 'internet_access', 'networked_share'];
  const fmtInd = (v, unit) => (v == null ? '–' : unit === 'ratio' ? `${(v * 100).toFixed(1)}%` : unit === 'per_10k' ? v.toFixed(1) : String(v));
  // a gap between two percentages is in percentage points
  const fmtGap = (g, unit) => (g == null ? '–' : (g < 0 ? '−' : '+') + (unit === 'ratio' ? `${(Math.abs(g) * 100).toFixed(1)} pt` : Math.abs(g).toFixed(1)));

  // A component's last error is current while it is not healthy; once it is healthy again after
  // the error, the error is shown as resolved, with when.
  function errorView(c) {
    const e = c.lastError;
    if (!e) return '';
    const resolved = HEALTHY.has(c.state) && c.since >= e.at;
    return resolved
      ? `<br><small class="resolved">resolved ${fmtTime(c.since)}: ${esc(e.message)}</small>`
      : `<br><small class="problems">${esc(e.message)} (${fmtAge(Date.now() - e.at)} ago)</small>`;
  }

  // charts follow their card's width, with few enough time labels that they never overlap
  function charts() {
    const mk = (el, label, color) => new uPlot({ width: el.clientWidth || 300, height: 180, series: [{}, { label, stroke: color, width: 2, fill: color + '22' }], axes: [{ space: 90 }, { size: 60 }], legend: { show: false }, cursor: { show: false } }, [[], []], el);
    const p = { rate: mk($('#chart-rate'), 'points/s', '#1a73e8'), buffer: mk($('#chart-buffer'), 'points', '#a15c00') };
    new ResizeObserver(() => {
      p.rate.setSize({ width: $('#chart-rate').clientWidth || 300, height: 180 });
      p.buffer.setSize({ width: $('#chart-buffer').clientWidth || 300, height: 180 });
    }).observe($('#chart-rate').parentElement);
    return p;
  }
  let plots;
  let history = [];
  function drawCharts() {
    if (!plots) plots = charts();
    const x = history.map((s) => s.at / 1000);
    plots.rate.setData([x, history.map((s) => s.ingestRate)]);
    plots.buffer.setData([x, history.map((s) => s.bufferLines)]);
  }

  function recovered(r) {
    const parts = Object.entries(r || {}).filter(([, n]) => typeof n === 'number' && n > 0).map(([k, n]) => `${k.replace(/([A-Z])/g, ' $1').toLowerCase()}: ${n}`);
    return parts.length ? parts.join(', ') : 'nothing lost';
  }

  function tile(id, value, level) {
    const t = $(id);
    t.className = `tile${level ? ` ${level}` : ''}`;
    t.querySelector('.v').textContent = value;
  }

  const dlSeen = [];
  function render(st) {
    const now = st.now;
    lastStatusAt = Date.now();
    unreachableSince = undefined;
    document.body.classList.remove('unreachable');
    const h = $('#health');
    h.className = `badge state s-${st.ready ? 'ready' : 'not-ready'}`;
    h.textContent = st.ready ? 'ready' : `not ready: ${st.notReady.join('; ')}`;
    $('#uptime').textContent = fmtAge(now - st.startedAt);
    $('#instance').textContent = st.instance ?? '–';
    $('#updated').textContent = fmtTime(now);
    const rates = st.rates || {};

    const sources = st.components.filter((c) => c.kind === 'source');
    $('#sources tbody').innerHTML = sources.map((c) => {
      const d = c.details || {};
      const detail = c.type === 'mqtt-broker' ? `${esc(d.listen)}${d.tls ? ' (TLS)' : ''} · ${d.connectedDevices} device(s) connected${d.goneDevices ? ` · ${fmtNum(d.goneDevices)} gone${d.lastGone?.length ? ` (last: ${d.lastGone.map((g) => esc(g.clientId)).join(', ')})` : ''}` : ''}${sum(d.refusals) ? ` · ${fmtNum(sum(d.refusals))} refused` : ''}`
        : c.type === 'mqtt-client' ? `${esc(d.url)} · ${d.connected ? 'connected' : 'disconnected'} · ${d.connects} connect(s)`
        : c.type === 'opcua' ? `${esc(d.url)} · ${esc(d.security)} · ${d.connected ? `connected · ${d.nodes?.ok ?? 0}/${d.nodes?.total ?? 0} nodes good` : `disconnected · nodes unknown (${d.nodes?.ok ?? 0}/${d.nodes?.total ?? 0} good at last contact)`} · ${d.outages} outage(s)${d.sessionsResumed ? ` · ${fmtNum(d.sessionsResumed)} resumed without loss` : ''}${d.gaps ? ` · <span class="bad">${fmtNum(d.gaps)} gap(s)</span>` : ''}${d.events ? ` · ${fmtNum(d.events.activeAlarmCount)} active alarm(s)` : ''}`
        : c.type === 'sparkplug-host' ? `${esc(d.mode)} host ${esc(d.hostId)} · ${d.nodesOnline} node(s) online, ${d.nodesOffline} offline · ${d.rebirthsSent} rebirth request(s)`
        : c.type === 'indicator-engine' ? `${d.equipmentReporting}/${d.equipment} registered devices reporting · ${d.unregisteredDevices} unregistered`
        : '';
      return `<tr data-source="${esc(c.name)}"><td>${esc(c.name)}</td><td>${esc(c.type)}</td><td>${state(c.state)}</td><td>${fmtAge(now - c.since)} ago</td>` +
        `<td class="num rate">${fmtNum(rates[c.name])}</td><td class="num">${c.lastValueAt ? fmtAge(now - c.lastValueAt) + ' ago' : '–'}</td>` +
        `<td class="num">${fmtNum(c.counters.received)}</td><td class="num">${fmtNum(sum(c.counters.dropped))}</td><td>${detail}${errorView(c)}</td></tr>`;
    }).join('');
    const failing = sources.flatMap((c) => [
      ...(c.details?.failingTopics || []).map((f) => `${esc(c.name)}: <code>${esc(f.topic)}</code> ${esc(f.reason)} ×${f.count}`),
      ...(c.details?.failingNodes || []).map((f) => `${esc(c.name)}: <code>${esc(f.node)}</code> (${esc(f.field)}) ${esc(f.status)} ${esc(f.statusCode)}`),
      ...(c.details?.recentGaps || []).slice(-5).reverse().map((g) => `${esc(c.name)}: values lost from ${fmtTime(g.start)} to ${fmtTime(g.end)} (${fmtAge(g.end - g.start)}): ${esc(g.reason)}, the server no longer had the session`),
      ...(c.details?.recentRefusals || []).slice(-5).reverse().map((r) => `${esc(c.name)}: refused ${esc(r.clientId ?? '')}${r.username ? ` (user ${esc(r.username)})` : ''}${r.address ? ` from ${esc(r.address)}` : ''}: ${esc(r.reason)} – ${esc(r.detail)}`),
    ]);
    // the plant's alarms as the OPC UA servers report them (conditions still retained), most severe first
    const alarms = sources.flatMap((c) => (c.details?.events?.activeAlarms || []).map((a) => ({ ...a, endpoint: c.name })))
      .sort((a, b) => b.severity - a.severity || a.time - b.time);
    $('#alarms').innerHTML = alarms.length
      ? `<h3>Active alarms (${alarms.length})</h3><table class="alarms"><thead><tr><th>Endpoint</th><th>Source</th><th>Condition</th><th class="num">Severity</th><th>Message</th><th>State</th><th>Since</th></tr></thead><tbody>${alarms.slice(0, 50).map((a) =>
        `<tr data-alarm="${esc(a.endpoint)}/${esc(a.source)}/${esc(a.condition)}"><td>${esc(a.endpoint)}</td><td>${esc(a.source)}</td><td>${esc(a.condition)} <small>${esc(a.type)}</small></td><td class="num">${a.severity}</td><td>${esc(a.message)}</td><td>${a.active ? '<span class="bad">active</span>' : 'inactive'}${a.acked ? '' : ', unacknowledged'}</td><td>${fmtTime(a.time)}</td></tr>`).join('')}</tbody></table>`
      : '';
    // the cardinality limit names the device whose new series it refuses
    const card = st.components.find((c) => c.type === 'cardinality');
    for (const o of (card?.details?.overBudget || []).slice(-5).reverse()) {
      failing.push(`series budget (${esc(o.budget)}): <code>${esc(o.source)}</code> in ${esc(o.measurement)}: ${fmtNum(o.refused)} new series refused, e.g. <code>${esc(o.example)}</code>`);
    }
    $('#problems').innerHTML = failing.length ? `<h3>Failing topics, nodes, gaps, refused devices</h3><ul class="problems">${failing.slice(0, 10).map((f) => `<li>${f}</li>`).join('')}</ul>` : '';

    // the problems that need someone now, at the top
    const active = st.notReady.map(esc);
    for (const c of sources.filter((s) => s.details?.untrustedServer)) {
      const u = c.details.untrustedServer;
      active.push(`${esc(c.name)}: the server's certificate is not trusted (${esc(u.subject ?? 'subject unknown')}, thumbprint <code>${esc(u.thumbprint)}</code>). Check it, then run <code>${esc(u.trust)}</code> or <button type="button" data-trust="${esc(c.name)}">trust it</button> (admin)`);
    }
    const buf = st.components.find((c) => c.kind === 'buffer');
    if (buf?.details?.losses) active.push(`buffer: ${buf.details.losses.exact ? '' : 'about '}${fmtNum(buf.details.losses.lines)} line(s) lost in damaged files (see Buffer)`);
    // the configuration running, and what the last reload did (an invalid one stays listed until the next good one)
    const cfg = st.config;
    if (cfg) {
      $('#cfg-hash').textContent = cfg.hash;
      $('#cfg-loaded').textContent = `${fmtAge(now - cfg.loadedAt)} ago`;
      const r = cfg.lastReload;
      $('#cfg-reload').textContent = !r ? 'no reload yet'
        : `last reload ${fmtAge(now - r.at)} ago (${r.trigger}): ${r.outcome}${r.outcome === 'applied' ? `, ${r.changes.length} change(s)${r.failed ? `, ${r.failed} failed` : ''}` : ''}`;
      $('#cfg-reload').className = r && (r.outcome === 'invalid' || r.outcome === 'refused' || r.failed) ? 'bad' : '';
      if (r && (r.outcome === 'invalid' || r.outcome === 'refused')) {
        active.push(`reload ${esc(r.outcome)} ${fmtAge(now - r.at)} ago, the running configuration is kept: ${r.problems.slice(0, 5).map((p) => `${p.path ? `<code>${esc(p.path)}</code> ` : ''}${p.line ? `(line ${p.line}, column ${p.column}) ` : ''}${esc(p.message)}`).join('; ')}`);
      }
      for (const c of (r?.changes || []).filter((x) => x.error)) active.push(`reload: ${esc(c.component)} ${esc(c.action)} failed: ${esc(c.error)}`);
    }
    $('#active').hidden = active.length === 0;
    $('#active-list').innerHTML = active.map((a) => `<li>${a}</li>`).join('');

    // the fleet: who reads which endpoint and group, the lease, and the last hand-overs
    const cl = st.cluster;
    $('#cluster').hidden = !cl;
    if (cl) {
      const lease = { held: 'lease held', waiting: 'waiting for an earlier lease of this instance to expire', 'cut-off': 'CUT OFF from etcd: reading nothing', 'etcd-down': 'etcd unreachable for every member: reading what it owns', connecting: 'connecting to etcd' }[cl.lease.state] || cl.lease.state;
      $('#cl-summary').textContent = `(${cl.instance}: ${lease} · ${cl.members.length} member(s) · ${cl.units.total} unit(s), ${cl.units.unowned.length} unowned · TTL ${fmtAge(cl.leaseTtlMs)})`;
      $('#cl-summary').className = cl.lease.state === 'held' ? 'meta' : 'meta bad';
      $('#cl-members tbody').innerHTML = cl.members.map((m) => `<tr data-member="${esc(m.instance)}"><td>${esc(m.instance)}${m.instance === cl.instance ? ' <small>(this gateway)</small>' : ''}</td><td>${m.since ? `${fmtAge(now - m.since)} ago` : '–'}</td><td class="num">${m.units.length}</td><td>${m.units.map(esc).join(', ') || '–'}</td></tr>`).join('') +
        (cl.units.unowned.length ? `<tr class="stale"><td>unowned</td><td></td><td class="num">${cl.units.unowned.length}</td><td>${cl.units.unowned.map(esc).join(', ')}</td></tr>` : '');
      $('#cl-handovers tbody').innerHTML = cl.handovers.slice(0, 10).map((h) => `<tr><td>${fmtTime(h.at)}</td><td>${esc(h.unit)}</td><td>${esc(h.action)}${h.from ? ` <small>from ${esc(h.from)}</small>` : ''}</td><td>${esc(h.reason)}</td><td class="num">${h.darkMs == null ? '–' : fmtAge(h.darkMs)}</td><td class="num">${fmtAge(h.durationMs)}</td></tr>`).join('') || '<tr><td colspan="6">none yet</td></tr>';
    }

    // Sparkplug: a dead node (or device) stays listed, marked offline and its metrics stale
    const sp = sources.find((c) => c.type === 'sparkplug-host');
    $('#sparkplug').hidden = !sp;
    if (sp) {
      const d = sp.details || {};
      $('#sp-summary').textContent = `(${d.mode}, ${d.nodesOnline} online, ${d.nodesOffline} offline, ${d.unknownAliases} unknown alias(es), ${d.gaps} gap(s))`;
      $('#sp-nodes tbody').innerHTML = (d.nodes || []).map((n) => {
        const devs = n.devices.map((v) => `<span class="${v.online ? '' : 'stale'}" data-device="${esc(v.device)}">${esc(v.device)}${v.online ? '' : ' (offline, stale)'}</span>`).join(', ');
        const st = n.online ? '<span class="state s-running">online</span>' : '<span class="state s-offline">offline</span>';
        return `<tr data-edge="${esc(n.group)}/${esc(n.edge)}" class="${n.online ? '' : 'stale'}"><td>${esc(n.group)} / ${esc(n.edge)}${n.restored ? ' <small>(restored)</small>' : ''}</td><td>${st}${n.rebirthPending ? ' <small>rebirth requested</small>' : ''}</td>` +
          `<td>${fmtAge(now - n.since)} ago</td><td class="num">${esc(n.bdSeq ?? '–')}</td><td class="num">${n.seq ?? '–'}</td>` +
          `<td class="num">${n.metrics}${n.staleMetrics ? ` <small class="stale">${n.staleMetrics} stale</small>` : ''}</td><td>${devs || '–'}</td>` +
          `<td class="num">${n.gaps}</td><td class="num">${n.rebirthsRequested}${n.rebirthsNeeded > n.rebirthsRequested ? ` <small>(${n.rebirthsNeeded} needed)</small>` : ''}</td><td>${fmtAge(now - n.lastMessageAt)} ago</td></tr>`;
      }).join('');
    }

    const sinks = st.components.filter((c) => c.kind === 'sink');
    $('#sinks tbody').innerHTML = sinks.map((c) => {
      const d = c.details || {};
      return `<tr data-sink="${esc(c.name)}"><td>${esc(c.name)}<br><small>${esc(d.url)} → ${esc(d.target)}</small></td><td class="sink-state">${state(c.state)}${d.alert ? `<br><small class="problems">${esc(d.alert)}</small>` : ''}</td>` +
        `<td class="num">${fmtNum(rates[c.name])}</td><td class="num">${d.lastLatencyMs ?? '–'} ms</td><td class="num">${fmtNum(d.retries)}</td><td>${c.lastError ? errorView(c).replace(/^<br>/, '') : '–'}</td></tr>`;
    }).join('');

    const b = buf;
    if (b) {
      const d = b.details || {};
      $('#buffer').innerHTML = `<dt>State</dt><dd>${state(b.state)}</dd><dt>Points waiting</dt><dd>${fmtNum(d.linesQueued)}</dd>` +
        `<dt>On disk</dt><dd>${fmtBytes(d.bytesOnDisk)} of ${fmtBytes(d.maxBytes)} (${((100 * d.bytesOnDisk) / d.maxBytes).toFixed(1)}%)${d.freeBytes != null ? `, ${fmtBytes(d.freeBytes)} free on the disk` : ''}</dd>` +
        `<dt>Oldest point</dt><dd>${d.linesQueued ? fmtAge(d.oldestAgeMs) : '–'}</dd><dt>When full</dt><dd>${esc(d.whenFull)}</dd>` +
        `<dt>Dropped</dt><dd>${fmtNum(sum(b.counters.dropped))}</dd><dt>Recovered at start</dt><dd>${esc(recovered(d.recovered))}</dd>` +
        (d.diskError ? `<dt>Disk</dt><dd class="problems">cannot write (${esc(d.diskError.code === 'ENOSPC' ? 'disk full' : d.diskError.code)}) for ${fmtAge(now - d.diskError.since)}: intake is held back, ${fmtNum(d.diskError.retries)} retries</dd>` : '') +
        (d.ledgerError ? `<dt>State files</dt><dd class="problems">${esc(d.ledgerError.file)} cannot be written (${esc(d.ledgerError.code)}), retrying</dd>` : '') +
        (d.losses ? `<dt>Lost in damaged segments</dt><dd class="problems" id="buffer-losses">${d.losses.exact ? '' : 'about '}${fmtNum(d.losses.lines)} line(s) in ${d.losses.findings.length} finding(s), ` +
          `${esc(d.losses.findings.map((f) => `${f.file.split('/').pop()} @${f.offset}`).join(', '))}; shown until acknowledged (POST /api/buffer/losses/acknowledge)</dd>` : '');
    }

    // at a glance
    const real = sources.filter((c) => c.type !== 'indicator-engine');
    const up = real.filter((c) => c.state === 'running' || c.state === 'degraded').length;
    tile('#g-sources', `${up}/${real.length}`, up === real.length ? '' : up === 0 ? 'bad' : 'warn');
    tile('#g-in', fmtNum(st.sample?.ingestRate ?? 0), '');  // from the devices; the sinks also write the indicator values
    tile('#g-out', fmtNum(sinks.reduce((n, c) => n + (rates[c.name] || 0), 0)), '');
    const worstSink = sinks.find((c) => c.state !== 'running') ?? sinks[0];
    tile('#g-sink', worstSink ? worstSink.state : '–', !worstSink || worstSink.state === 'running' ? '' : worstSink.state === 'retrying' ? 'warn' : 'bad');
    if (b) {
      const d = b.details || {};
      const fill = d.maxBytes ? (100 * d.bytesOnDisk) / d.maxBytes : 0;
      tile('#g-buffer', `${fill.toFixed(0)}%${d.linesQueued ? ` · ${fmtAge(d.oldestAgeMs)}` : ''}`, d.diskError || b.state === 'full' ? 'bad' : fill > 50 ? 'warn' : '');
    }
    dlSeen.push([now, st.deadLetters.total]);
    while (dlSeen.length > 1 && dlSeen[0][0] < now - 60_000) dlSeen.shift();
    const perMin = dlSeen.length > 1 ? ((dlSeen[dlSeen.length - 1][1] - dlSeen[0][1]) * 60_000) / Math.max(1000, dlSeen[dlSeen.length - 1][0] - dlSeen[0][0]) : 0;
    tile('#g-dl', fmtNum(perMin), perMin > 0 ? 'warn' : '');
    tile('#g-problems', String(active.length), active.length ? 'bad' : '');

    const ind = st.indicators;
    if (ind) {
      $('#ind-window').textContent = `(window ${fmtAge(ind.window)}; ${ind.scope === 'fleet' ? `fleet: ${(ind.contributors || []).length} gateway(s) contributed${ind.contributors?.length ? ` (${ind.contributors.join(', ')})` : ''}` : 'this gateway only'})`;
      renderBars(ind.values);
      $('#indicators tbody').innerHTML = ind.values.filter((v) => v.scope === 'region' || v.indicator === 'nc_rate' || v.indicator === 'internet_access' || v.indicator === 'robot_density').map((v) =>
        `<tr data-indicator="${esc(v.indicator)}" data-scope="${esc(v.scopeId)}"><td>${esc(v.scopeName)}</td><td>${esc(INDICATORS[v.indicator] || v.indicator)}</td><td>${esc(v.kind)}</td>` +
        `<td class="num value">${fmtInd(v.value, v.unit)}</td><td class="num">${v.target == null ? '–' : fmtInd(v.target, v.unit)}</td>` +
        `<td class="num ${v.gap == null ? '' : v.gap < 0 ? 'gap-neg' : 'gap-pos'}">${fmtGap(v.gap, v.unit)}</td>` +
        `<td class="num">${fmtNum(v.numerator)} / ${fmtNum(v.denominator)}</td></tr>`).join('');
      const engine = sources.find((c) => c.type === 'indicator-engine');
      const unreg = (engine?.details?.unregistered || []).slice(0, 8).map((u) => esc(u.key));
      $('#ind-unregistered').innerHTML = unreg.length ? `Reporting but not in the registry (not counted): ${unreg.join(', ')}${engine.details.unregistered.length > 8 ? ', …' : ''}` : '';
    } else {
      $('#ind-bars').innerHTML = '';
      $('#indicators tbody').innerHTML = '<tr><td colspan="7">Indicators are not configured.</td></tr>';
    }

    const dl = st.deadLetters;
    $('#dl-total').textContent = `(${dl.total})`;
    $('#dl-reasons').textContent = Object.entries(dl.byReason).map(([r, n]) => `${r}: ${n}`).join(' · ') || 'none';
    $('#deadletters tbody').innerHTML = dl.latest.slice(0, 10).map((d) =>
      `<tr><td>${fmtTime(d.at)}</td><td>${esc(d.source)}</td><td>${esc(d.reason)}</td><td><code>${esc(d.topic ?? '')}</code></td><td>${esc(d.message)}</td></tr>`).join('');

    if (st.sample && (!history.length || history[history.length - 1].at !== st.sample.at)) {
      history.push(st.sample);
      if (history.length > 180) history.shift();
      drawCharts();
    }
  }

  // indicators as bars against their targets: the region first, then each city
  function renderBars(values) {
    const bar = (v) => {
      const scale = Math.max(v.target ?? 0, v.value ?? 0) * 1.15 || 1;
      const met = v.target != null && v.value != null && v.value >= v.target;
      return `<div class="bar" data-indicator="${esc(v.indicator)}" data-scope="${esc(v.scopeId)}"><span>${esc(INDICATORS[v.indicator] || v.indicator)}</span>` +
        `<span class="track"><span class="fill${met ? ' met' : ''}" data-w="${(100 * (v.value ?? 0)) / scale}"></span>${v.target != null ? `<span class="target" data-l="${(100 * v.target) / scale}" title="target"></span>` : ''}</span>` +
        `<span class="num">${fmtInd(v.value, v.unit)}${v.target != null ? ` of ${fmtInd(v.target, v.unit)}` : ''}</span></div>`;
    };
    const pick = (scope) => values.filter((v) => v.scope === scope && v.kind === 'measured' && BARS.includes(v.indicator));
    const region = pick('region');
    const cities = [...new Set(pick('city').map((v) => v.scopeName))];
    $('#ind-bars').innerHTML = `<div class="bars"><h3>${esc(region[0]?.scopeName ?? 'Region')}</h3>${region.map(bar).join('')}</div>` +
      cities.map((c) => `<div class="bars"><h3>${esc(c)}</h3>${pick('city').filter((v) => v.scopeName === c).map(bar).join('')}</div>`).join('');
    // sizes set from script: the page's content security policy allows no inline style attributes
    for (const el of document.querySelectorAll('#ind-bars [data-w]')) el.style.width = `${el.dataset.w}%`;
    for (const el of document.querySelectorAll('#ind-bars [data-l]')) el.style.left = `${el.dataset.l}%`;
  }

  // the device list is asked for, filtered by the gateway: it stays small however large the fleet
  let prevDevices = new Map();
  async function loadDevices() {
    const q = new URLSearchParams({ q: $('#device-filter').value, state: $('#device-state').value, limit: '200' });
    try {
      const r = await fetch(`/api/devices?${q}`);
      if (!r.ok) return;
      const d = await r.json();
      const now = Date.now();
      const seen = new Map();
      $('#dev-summary').textContent = `(${Object.entries(d.byState).map(([k, n]) => `${n} ${k}`).join(', ') || 'none'}; ${d.matched} shown of ${d.total}${d.matched > d.devices.length ? `, first ${d.devices.length}` : ''})`;
      $('#devices tbody').innerHTML = d.devices.map((x) => {
        const key = `${x.source}/${x.id}`;
        seen.set(key, [now, x.messages]);
        const p = prevDevices.get(key);
        const rate = p && now > p[0] ? ((x.messages - p[1]) * 1000) / (now - p[0]) : null;
        return `<tr data-device="${esc(x.id)}" class="${x.state === 'gone' || x.state === 'offline' ? 'stale' : ''}"><td>${esc(x.source)}</td><td>${esc(x.id)}</td><td>${state(x.state)}</td><td>${fmtAge(now - x.since)} ago</td>` +
          `<td class="num">${x.lastSeenAt ? `${fmtAge(now - x.lastSeenAt)} ago` : '–'}</td><td class="num">${rate == null ? '–' : fmtNum(Math.max(0, rate))}</td><td>${esc([x.user, x.address].filter(Boolean).join(' · '))}</td></tr>`;
      }).join('');
      prevDevices = seen;
    } catch {
      // the status stream reports an unreachable gateway
    }
  }
  setInterval(loadDevices, 2000);
  $('#device-filter').addEventListener('input', loadDevices);
  $('#device-state').addEventListener('change', loadDevices);
  loadDevices();

  // an admin action: the browser asks for the credentials (http.auth) on the 401
  document.addEventListener('click', async (e) => {
    const name = e.target instanceof HTMLElement && e.target.dataset.trust;
    if (!name) return;
    const r = await fetch(`/api/opcua/trust?endpoint=${encodeURIComponent(name)}`, { method: 'POST' });
    const body = await r.json().catch(() => ({}));
    alert(r.ok ? `trusted ${body.thumbprint} (${body.subject}); the endpoint connects again now` : `not trusted: ${body.error ?? r.status}`);
  });

  // A page that shows old state as current is worse than none: without a status for 3 s the
  // header says the gateway is unreachable, since when, and the rest is greyed out.
  let lastStatusAt = Date.now();
  let unreachableSince;
  function unreachable() {
    unreachableSince ??= lastStatusAt;
    document.body.classList.add('unreachable');
    const h = $('#health');
    h.className = 'badge state s-unreachable';
    h.textContent = `gateway unreachable since ${fmtTime(unreachableSince)}`;
    $('#conn').textContent = 'connection lost, retrying…';
  }
  setInterval(() => {
    if (Date.now() - lastStatusAt > 3000) unreachable();
  }, 1000);

  const es = new EventSource('/api/events');
  es.addEventListener('history', (e) => { history = JSON.parse(e.data); drawCharts(); });
  es.addEventListener('status', (e) => { $('#conn').textContent = 'live'; render(JSON.parse(e.data)); });
  es.onerror = () => unreachable();
})();
