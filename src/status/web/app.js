// plantgate dashboard: renders /api/events (server-sent events). No framework, no download at
// runtime: everything is served by the gateway itself.
(() => {
  'use strict';
  const $ = (s) => document.querySelector(s);
  const fmtAge = (ms) => (ms == null ? '–' : ms < 1500 ? `${Math.round(ms)} ms` : ms < 90_000 ? `${(ms / 1000).toFixed(1)} s` : ms < 5_400_000 ? `${Math.round(ms / 60_000)} min` : `${(ms / 3_600_000).toFixed(1)} h`);
  const fmtNum = (n) => (n == null ? '–' : Number(n).toLocaleString('en-US', { maximumFractionDigits: 1 }));
  const fmtBytes = (b) => (b < 1024 ? `${b} B` : b < 1048576 ? `${(b / 1024).toFixed(1)} KiB` : b < 1073741824 ? `${(b / 1048576).toFixed(1)} MiB` : `${(b / 1073741824).toFixed(2)} GiB`);
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  const state = (s) => `<span class="state s-${esc(s)}">${esc(s)}</span>`;
  const sum = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);

  const INDICATORS = {
    nc_rate: 'NC rate of key processes', nc_rate_pooled: 'NC rate (pooled)', robot_density: 'Robots reporting per 10,000 employees',
    robot_density_active: 'Robots active per 10,000', robot_density_installed: 'Robots installed per 10,000 (registry)',
    robots_reporting: 'Robots reporting', robots_active: 'Robots active', internet_access: 'Industrial-internet access (regulated)',
    networked_share: 'Networked share of digital equipment', key_links_digitalised: 'Key business links digitalised',
    rd_design_tools: 'Digital R&D design tools', networked_collaboration: 'Networked collaboration',
  };
  const fmtInd = (v, unit) => (v == null ? '–' : unit === 'ratio' ? `${(v * 100).toFixed(1)}%` : unit === 'per_10k' ? v.toFixed(1) : String(v));
  // a gap between two percentages is in percentage points
  const fmtGap = (g, unit) => (g == null ? '–' : (g < 0 ? '−' : '+') + (unit === 'ratio' ? `${(Math.abs(g) * 100).toFixed(1)} pt` : Math.abs(g).toFixed(1)));

  function charts() {
    const mk = (el, label, color) => new uPlot({ width: el.clientWidth || 500, height: 180, series: [{}, { label, stroke: color, width: 2, fill: color + '22' }], axes: [{}, { size: 60 }], legend: { show: false }, cursor: { show: false } }, [[], []], el);
    return { rate: mk($('#chart-rate'), 'values/s', '#1a73e8'), buffer: mk($('#chart-buffer'), 'lines', '#a15c00') };
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

  function render(st) {
    const now = st.now;
    const ready = st.ready;
    const h = $('#health');
    h.className = `badge state s-${ready ? 'ready' : 'not-ready'}`;
    h.textContent = ready ? 'ready' : `not ready: ${st.notReady.join('; ')}`;
    $('#uptime').textContent = fmtAge(now - st.startedAt);
    $('#updated').textContent = new Date(now).toLocaleTimeString();
    const rates = st.rates || {};

    const sources = st.components.filter((c) => c.kind === 'source');
    $('#sources tbody').innerHTML = sources.map((c) => {
      const d = c.details || {};
      const detail = c.type === 'mqtt-broker' ? `${esc(d.listen)}${d.tls ? ' (TLS)' : ''} · ${d.connectedDevices} device(s) connected${sum(d.refusals) ? ` · ${fmtNum(sum(d.refusals))} refused` : ''}`
        : c.type === 'mqtt-client' ? `${esc(d.url)} · ${d.connected ? 'connected' : 'disconnected'} · ${d.connects} connect(s)`
        : c.type === 'opcua' ? `${esc(d.url)} · ${esc(d.security)} · ${d.connected ? 'connected' : 'disconnected'} · ${d.nodes?.ok ?? 0}/${d.nodes?.total ?? 0} nodes good · ${d.outages} outage(s)`
        : c.type === 'sparkplug-host' ? `${esc(d.mode)} host ${esc(d.hostId)} · ${d.nodesOnline} node(s) online, ${d.nodesOffline} offline · ${d.rebirthsSent} rebirth request(s)`
        : c.type === 'indicator-engine' ? `${d.equipmentReporting}/${d.equipment} registered devices reporting · ${d.unregisteredDevices} unregistered`
        : '';
      return `<tr data-source="${esc(c.name)}"><td>${esc(c.name)}</td><td>${esc(c.type)}</td><td>${state(c.state)}</td><td>${fmtAge(now - c.since)} ago</td>` +
        `<td class="num rate">${fmtNum(rates[c.name])}</td><td class="num">${c.lastValueAt ? fmtAge(now - c.lastValueAt) + ' ago' : '–'}</td>` +
        `<td class="num">${fmtNum(c.counters.received)}</td><td class="num">${fmtNum(sum(c.counters.dropped))}</td><td>${detail}${c.lastError ? `<br><small class="problems">${esc(c.lastError.message)}</small>` : ''}</td></tr>`;
    }).join('');
    const failing = sources.flatMap((c) => [
      ...(c.details?.failingTopics || []).map((f) => `${esc(c.name)}: <code>${esc(f.topic)}</code> ${esc(f.reason)} ×${f.count}`),
      ...(c.details?.failingNodes || []).map((f) => `${esc(c.name)}: <code>${esc(f.node)}</code> (${esc(f.field)}) ${esc(f.status)} ${esc(f.statusCode)}`),
      ...(c.details?.recentRefusals || []).slice(-5).reverse().map((r) => `${esc(c.name)}: refused ${esc(r.clientId ?? '')}${r.username ? ` (user ${esc(r.username)})` : ''}${r.address ? ` from ${esc(r.address)}` : ''}: ${esc(r.reason)} – ${esc(r.detail)}`),
    ]);
    // the cardinality guard names the device whose new series it refuses
    const card = st.components.find((c) => c.type === 'cardinality');
    for (const o of (card?.details?.overBudget || []).slice(-5).reverse()) {
      failing.push(`series budget (${esc(o.budget)}): <code>${esc(o.source)}</code> in ${esc(o.measurement)}: ${fmtNum(o.refused)} new series refused, e.g. <code>${esc(o.example)}</code>`);
    }
    $('#problems').innerHTML = failing.length ? `<h3>Failing topics, nodes, refused devices</h3><ul class="problems">${failing.slice(0, 10).map((f) => `<li>${f}</li>`).join('')}</ul>` : '';

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

    $('#sinks tbody').innerHTML = st.components.filter((c) => c.kind === 'sink').map((c) => {
      const d = c.details || {};
      return `<tr><td>${esc(c.name)}<br><small>${esc(d.url)} → ${esc(d.target)}</small></td><td>${state(c.state)}${d.alert ? `<br><small class="problems">${esc(d.alert)}</small>` : ''}</td>` +
        `<td class="num">${fmtNum(rates[c.name])}</td><td class="num">${d.lastLatencyMs ?? '–'} ms</td><td class="num">${fmtNum(d.retries)}</td><td>${c.lastError ? `${esc(c.lastError.message)}<br><small>${fmtAge(now - c.lastError.at)} ago</small>` : '–'}</td></tr>`;
    }).join('');

    const b = st.components.find((c) => c.kind === 'buffer');
    if (b) {
      const d = b.details || {};
      $('#buffer').innerHTML = `<dt>State</dt><dd>${state(b.state)}</dd><dt>Lines waiting</dt><dd>${fmtNum(d.linesQueued)}</dd>` +
        `<dt>On disk</dt><dd>${fmtBytes(d.bytesOnDisk)} of ${fmtBytes(d.maxBytes)} (${((100 * d.bytesOnDisk) / d.maxBytes).toFixed(1)}%)</dd>` +
        `<dt>Oldest line</dt><dd>${d.linesQueued ? fmtAge(d.oldestAgeMs) : '–'}</dd><dt>When full</dt><dd>${esc(d.whenFull)}</dd>` +
        `<dt>Dropped</dt><dd>${fmtNum(sum(b.counters.dropped))}</dd><dt>Recovered at start</dt><dd>${esc(recovered(d.recovered))}</dd>` +
        (d.diskError ? `<dt>Disk</dt><dd class="problems">cannot write (${esc(d.diskError.code === 'ENOSPC' ? 'disk full' : d.diskError.code)}) for ${fmtAge(now - d.diskError.since)}: intake is held back, ${fmtNum(d.diskError.retries)} retries</dd>` : '') +
        (d.ledgerError ? `<dt>State files</dt><dd class="problems">${esc(d.ledgerError.file)} cannot be written (${esc(d.ledgerError.code)}), retrying</dd>` : '') +
        (d.losses ? `<dt>Lost in damaged segments</dt><dd class="problems" id="buffer-losses">${d.losses.exact ? '' : 'about '}${fmtNum(d.losses.lines)} line(s) in ${d.losses.findings.length} finding(s), ` +
          `${esc(d.losses.findings.map((f) => `${f.file.split('/').pop()} @${f.offset}`).join(', '))}; shown until acknowledged (POST /api/buffer/losses/acknowledge)</dd>` : '');
    }

    const ind = st.indicators;
    if (ind) {
      $('#ind-window').textContent = `(window ${fmtAge(ind.window)})`;
      $('#indicators tbody').innerHTML = ind.values.filter((v) => v.scope === 'region' || v.indicator === 'nc_rate' || v.indicator === 'internet_access' || v.indicator === 'robot_density').map((v) =>
        `<tr data-indicator="${esc(v.indicator)}" data-scope="${esc(v.scopeId)}"><td>${esc(v.scopeName)}</td><td>${esc(INDICATORS[v.indicator] || v.indicator)}</td><td>${esc(v.kind)}</td>` +
        `<td class="num value">${fmtInd(v.value, v.unit)}</td><td class="num">${v.target == null ? '–' : fmtInd(v.target, v.unit)}</td>` +
        `<td class="num ${v.gap == null ? '' : v.gap < 0 ? 'gap-neg' : 'gap-pos'}">${fmtGap(v.gap, v.unit)}</td>` +
        `<td class="num">${fmtNum(v.numerator)} / ${fmtNum(v.denominator)}</td></tr>`).join('');
    } else {
      $('#indicators tbody').innerHTML = '<tr><td colspan="7">Indicators are not configured.</td></tr>';
    }

    const dl = st.deadLetters;
    $('#dl-total').textContent = `(${dl.total})`;
    $('#dl-reasons').textContent = Object.entries(dl.byReason).map(([r, n]) => `${r}: ${n}`).join(' · ') || 'none';
    $('#deadletters tbody').innerHTML = dl.latest.slice(0, 10).map((d) =>
      `<tr><td>${new Date(d.at).toLocaleTimeString()}</td><td>${esc(d.source)}</td><td>${esc(d.reason)}</td><td><code>${esc(d.topic ?? '')}</code></td><td>${esc(d.message)}</td></tr>`).join('');

    if (st.sample && (!history.length || history[history.length - 1].at !== st.sample.at)) {
      history.push(st.sample);
      if (history.length > 180) history.shift();
      drawCharts();
    }
  }

  const es = new EventSource('/api/events');
  es.addEventListener('history', (e) => { history = JSON.parse(e.data); drawCharts(); });
  es.addEventListener('status', (e) => { $('#conn').textContent = 'live'; render(JSON.parse(e.data)); });
  es.onerror = () => { $('#conn').textContent = 'connection lost, retrying…'; };
})();
