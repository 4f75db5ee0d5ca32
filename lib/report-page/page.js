// memsentry report page: draws the JSON embedded in #memsentry-data with uPlot. The same page is
// a static report (data.live null) and the live view (data.live { pollMs }: it polls
// ./data.json?since=<newest time> and appends the new points).
//
// Everything from the data goes into the page through textContent, never as HTML. Times are
// shown in the viewer's local time zone (uPlot's default, and toLocaleString below).
;(function () {
  'use strict'

  var SERIES = {
    rss: { label: 'RSS', stroke: '#2563eb', width: 2 },
    pss: { label: 'PSS', stroke: '#0891b2', width: 1.5 },
    heapUsed: { label: 'heap used', stroke: '#16a34a', width: 1.5 },
    external: { label: 'external', stroke: '#84cc16', width: 1.25 },
    treeRss: { label: 'tree RSS', stroke: '#7c3aed', width: 1.5 },
    cgroupUsage: { label: 'cgroup usage', stroke: '#92400e', width: 1.25 },
    workingSet: { label: 'working set', stroke: '#db2777', width: 1.5 },
  }
  var LINE_STYLE = {
    limit: { stroke: '#dc2626', dash: [], width: 2 },
    high: { stroke: '#ea580c', dash: [8, 4], width: 1.5 },
    threshold: { stroke: '#d97706', dash: [5, 4], width: 1.5 },
  }
  var LEAK_FILL = 'rgba(220, 38, 38, 0.09)'
  var LEAK_EDGE = 'rgba(220, 38, 38, 0.55)'
  var KIB = 1024
  var MIB = KIB * 1024
  var GIB = MIB * 1024

  var data = JSON.parse(document.getElementById('memsentry-data').textContent)
  var chart = null
  var chartKeys = []
  var markers = [] // drawn markers, CSS px relative to the plot: { x, y, text }
  var scaleLines = null // the checkbox's state; null until decided from the data
  var rendered = false
  var zoomed = false // the user dragged a time range; live updates then keep it
  var visible = {} // series key -> shown; decided once per key, then as the user toggles it

  // ---------------------------------------------------------------------------------------------
  // Formatting

  function fmtBytes(b) {
    if (b == null || !isFinite(b)) return '–'
    var a = Math.abs(b)
    if (a >= GIB) return (b / GIB).toFixed(a >= 10 * GIB ? 1 : 2) + ' GiB'
    if (a >= MIB) return (b / MIB).toFixed(a >= 100 * MIB ? 0 : 1) + ' MiB'
    if (a >= KIB) return (b / KIB).toFixed(0) + ' KiB'
    return Math.round(b) + ' B'
  }

  // Axis ticks are powers-of-two multiples: no decimals needed ('96 MiB', '1.5 GiB').
  function fmtAxisBytes(b) {
    var units = [
      [GIB, ' GiB'],
      [MIB, ' MiB'],
      [KIB, ' KiB'],
    ]
    for (var i = 0; i < units.length; i++) {
      if (Math.abs(b) >= units[i][0]) return +(b / units[i][0]).toFixed(2) + units[i][1]
    }
    return b + ' B'
  }

  function fmtSlope(bps) {
    if (bps == null || !isFinite(bps)) return '–'
    return (bps >= 0 ? '+' : '') + fmtBytes(bps * 60) + '/min'
  }

  function fmtDuration(ms) {
    if (ms == null || !isFinite(ms)) return '–'
    var s = Math.round(ms / 1000)
    if (s < 60) return s + ' s'
    var m = Math.floor(s / 60)
    if (m < 60) return m + ' min ' + (s % 60) + ' s'
    var h = Math.floor(m / 60)
    if (h < 48) return h + ' h ' + (m % 60) + ' min'
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h'
  }

  function fmtTime(ms) {
    return ms == null ? '–' : new Date(ms).toLocaleString()
  }

  function fmtClock(ms) {
    return ms == null ? '–' : new Date(ms).toLocaleTimeString()
  }

  function el(tag, attrs, children) {
    var e = document.createElement(tag)
    if (attrs) {
      for (var k in attrs) {
        if (k === 'text') e.textContent = attrs[k]
        else if (k === 'class') e.className = attrs[k]
        else e.setAttribute(k, attrs[k])
      }
    }
    if (children) {
      for (var i = 0; i < children.length; i++) if (children[i]) e.appendChild(children[i])
    }
    return e
  }

  function table(node, head, rows) {
    node.textContent = ''
    var tr = el('tr')
    head.forEach(function (h) {
      tr.appendChild(el('th', { text: h }))
    })
    node.appendChild(el('thead', null, [tr]))
    var body = el('tbody')
    rows.forEach(function (row) {
      var r = el('tr', row.cls ? { class: row.cls } : null)
      row.cells.forEach(function (c) {
        var cell = typeof c === 'object' && c !== null ? c : { text: c }
        r.appendChild(
          el('td', { text: cell.text == null ? '' : String(cell.text), class: cell.cls || '' }),
        )
      })
      body.appendChild(r)
    })
    node.appendChild(body)
  }

  // ---------------------------------------------------------------------------------------------
  // Header, figures, tables

  function renderHeader() {
    var p = data.process || {}
    document.getElementById('title').textContent = data.title || 'memsentry report'
    var bits = ['pid ' + p.pid]
    if (p.title) bits.push(p.title)
    if (p.node) bits.push('Node ' + p.node)
    if (p.uptimeMs != null)
      bits.push('up ' + fmtDuration(p.uptimeMs) + ' at ' + fmtClock(data.generatedAt))
    if (data.sentry && data.sentry.intervalMs)
      bits.push('sampled every ' + data.sentry.intervalMs + ' ms')
    if (p.memsentry) bits.push('memsentry ' + p.memsentry)
    document.getElementById('proc').textContent = bits.join(' · ')
    var cmd = p.argv ? p.argv.join(' ') : [p.exec, p.script].filter(Boolean).join(' ')
    if (p.execArgv && p.execArgv.length) cmd += '   (node options: ' + p.execArgv.join(' ') + ')'
    document.getElementById('cmd').textContent = cmd
    var foot = 'Generated ' + fmtTime(data.generatedAt) + '. '
    foot += data.live
      ? 'Live view: not for public exposure. '
      : 'A static report: it fetches nothing; open it in any browser. '
    if (!p.argv) foot += 'Command lines are left out (includeCmdline: false). '
    if (data.thinnedFrom) {
      foot += 'The history of ' + data.thinnedFrom + ' samples is drawn thinned to its peaks. '
    }
    document.getElementById('foot').textContent = foot
  }

  function renderTrigger() {
    var box = document.getElementById('trigger')
    var t = data.trigger
    if (!t || t.type !== 'leak') {
      box.hidden = true
      return
    }
    var ep = null
    for (var i = 0; i < data.leaks.length; i++)
      if (data.leaks[i].detected === t.time) ep = data.leaks[i]
    var text = 'Written when a leak was confirmed at ' + fmtTime(t.time)
    if (ep) {
      text +=
        ': ' + ep.metric + ' growing ' + fmtSlope(ep.slopeBytesPerSec) + ', suspect ' + ep.suspect
      if (ep.msToLimit != null) text += ', limit reached in about ' + fmtDuration(ep.msToLimit)
    }
    box.textContent = text + '.'
    box.hidden = false
  }

  function figure(k, v, s, bad) {
    return el('div', { class: 'fig' + (bad ? ' bad' : '') }, [
      el('div', { class: 'k', text: k }),
      el('div', { class: 'v', text: v }),
      s ? el('div', { class: 's', text: s }) : null,
    ])
  }

  function renderFigures() {
    var box = document.getElementById('figures')
    box.textContent = ''
    var l = data.latest
    if (!l) {
      box.appendChild(figure('latest', 'no sample yet'))
      return
    }
    var limit = null
    data.lines.forEach(function (line) {
      if (line.kind === 'limit') limit = line.bytes
    })
    var leakOpen = data.leaks.some(function (e) {
      return e.end == null
    })
    box.appendChild(figure('RSS', fmtBytes(l.rss), 'peak ' + fmtBytes(l.hwm)))
    if (l.pss != null) box.appendChild(figure('PSS', fmtBytes(l.pss), 'USS ' + fmtBytes(l.uss)))
    if (l.heapUsed != null) {
      box.appendChild(figure('heap used', fmtBytes(l.heapUsed), 'of ' + fmtBytes(l.heapTotal)))
    }
    if (l.external != null) {
      box.appendChild(
        figure('external', fmtBytes(l.external), 'buffers ' + fmtBytes(l.arrayBuffers)),
      )
    }
    if (l.treeRss != null) {
      box.appendChild(
        figure(
          'tree RSS',
          fmtBytes(l.treeRss),
          data.children.length + ' children ' + fmtBytes(l.childrenRss),
        ),
      )
    }
    if (l.cgroup) {
      box.appendChild(figure('cgroup usage', fmtBytes(l.cgroup.usage), 'v' + l.cgroup.version))
      box.appendChild(figure('working set', fmtBytes(l.cgroup.workingSet)))
    }
    if (limit != null) {
      var used = l.cgroup && l.cgroup.workingSet != null ? l.cgroup.workingSet : l.rss
      var pct = used != null ? Math.round((used / limit) * 100) + '% used' : ''
      box.appendChild(figure('limit', fmtBytes(limit), pct, used / limit > 0.9))
    }
    if (l.swap) box.appendChild(figure('swap', fmtBytes(l.swap)))
    if (l.threads != null) box.appendChild(figure('threads', String(l.threads)))
    var last = leakOpen ? data.leaks[data.leaks.length - 1] : null
    box.appendChild(
      figure(
        'leak',
        last ? fmtSlope(last.slopeBytesPerSec) : 'none',
        last
          ? last.suspect + ' · since ' + fmtClock(last.detected)
          : data.leaks.length + (data.leaks.length === 1 ? ' past episode' : ' past episodes'),
        !!last,
      ),
    )
  }

  function pct(share) {
    return Math.round((share || 0) * 100) + '%'
  }

  // A leak diagnosis in a few words: its top sites, or for a native suspect what grew.
  function diagnosisText(d, max) {
    if (!d) return ''
    if (d.sites && d.sites.length) {
      return d.sites
        .slice(0, max)
        .map(function (s) {
          return s.where + ' ' + pct(s.share)
        })
        .join(', ')
    }
    var n = d.native
    if (!n || !n.growth) return d.suspect === 'native' ? '' : 'no live JS allocation sampled'
    var parts = []
    if (n.growth.external) parts.push('external +' + fmtBytes(n.growth.external.bytes))
    if (n.outsideHeap) parts.push('outside the heap +' + fmtBytes(n.outsideHeap.bytes))
    if (n.child)
      parts.push('child ' + n.child.comm + ' [' + n.child.pid + '] +' + fmtBytes(n.child.bytes))
    return parts.join(', ')
  }

  function leakRows() {
    return data.leaks.map(function (e) {
      var routes = (e.routes || [])
        .slice(0, 3)
        .map(function (r) {
          return r.route + ' (' + fmtBytes(r.bytesPerRequest) + '/req)'
        })
        .join(', ')
      return {
        cells: [
          fmtTime(e.start),
          fmtTime(e.detected),
          e.end == null ? 'ongoing' : fmtTime(e.end),
          e.metric,
          { text: fmtSlope(e.slopeBytesPerSec), cls: 'num' },
          { text: fmtBytes(e.growthBytes), cls: 'num' },
          { text: e.confidence != null ? (e.confidence * 100).toFixed(1) + '%' : '–', cls: 'num' },
          e.suspect,
          e.msToLimit == null ? '–' : fmtDuration(e.msToLimit),
          routes,
          e.diagnosis ? diagnosisText(e.diagnosis, 3) : 'pending',
        ],
      }
    })
  }

  // The newest diagnosed episode's allocation sites, each with the stack that allocated most.
  function renderSites() {
    var diagnosed = data.leaks.filter(function (e) {
      return e.diagnosis && e.diagnosis.sites && e.diagnosis.sites.length
    })
    var box = document.getElementById('sites-box')
    box.hidden = diagnosed.length === 0
    if (!diagnosed.length) return
    var d = diagnosed[diagnosed.length - 1].diagnosis
    document.getElementById('sites-note').textContent =
      'Live JS allocations sampled for ' +
      fmtDuration(d.durationMs) +
      ' from ' +
      fmtTime(d.since) +
      ' (one sample per ' +
      fmtBytes(d.samplingIntervalBytes) +
      ' allocated, ' +
      fmtBytes(d.sampledBytes) +
      " in all), by the first function in the application's code; lines are where each " +
      'function starts.'
    table(
      document.getElementById('sites'),
      ['share', 'bytes', 'samples', 'allocated in', 'stack'],
      d.sites.map(function (s) {
        return {
          cells: [
            { text: pct(s.share), cls: 'num' },
            { text: fmtBytes(s.bytes), cls: 'num' },
            { text: s.count, cls: 'num' },
            { text: s.where, cls: 'mono' },
            { text: (s.stack || []).slice(0, 5).join(' ← '), cls: 'mono' },
          ],
        }
      }),
    )
  }

  function eventText(e) {
    switch (e.type) {
      case 'threshold':
        return (
          e.name +
          ' ' +
          e.direction +
          ': ' +
          e.metric +
          (e.pid != null ? ' of ' + e.comm + ' [' + e.pid + ']' : '') +
          ' ' +
          fmtBytes(e.value) +
          (e.direction === 'up' ? ' above ' : ' below ') +
          fmtBytes(e.threshold)
        )
      case 'leak':
        return (
          e.metric +
          ' growing ' +
          fmtSlope(e.slopeBytesPerSec) +
          ', confidence ' +
          (e.confidence * 100).toFixed(1) +
          '%, suspect ' +
          e.suspect +
          (e.msToLimit != null ? ', limit in ' + fmtDuration(e.msToLimit) : '')
        )
      case 'leak-end':
        return e.metric + ' stopped growing'
      case 'leak-diagnosis':
        return (
          'suspect ' +
          e.suspect +
          (e.sites && e.sites.length
            ? ', allocated in ' +
              diagnosisText(e, 3) +
              ' (' +
              fmtBytes(e.sampledBytes) +
              ' sampled)'
            : ': ' + diagnosisText(e, 3))
        )
      case 'child':
        return (
          e.change +
          ' ' +
          e.comm +
          ' [' +
          e.pid +
          ']' +
          (e.change === 'exit' && e.rss != null ? ', last RSS ' + fmtBytes(e.rss) : '') +
          (e.seenMs != null ? ', seen ' + fmtDuration(e.seenMs) : '') +
          (e.cmdline ? ': ' + e.cmdline : '')
        )
      case 'oom':
        return 'the cgroup OOM killer acted (count ' + e.oomEvents + ')'
      default:
        return ''
    }
  }

  function renderTables() {
    var leaksBox = document.getElementById('leaks-box')
    leaksBox.hidden = data.leaks.length === 0
    table(
      document.getElementById('leaks'),
      [
        'window from',
        'confirmed',
        'ended',
        'metric',
        'slope',
        'growth',
        'confidence',
        'suspect',
        'to limit',
        'routes',
        'allocated in',
      ],
      leakRows(),
    )
    renderSites()

    var shown = data.events.slice(-300).reverse()
    var note = data.events.length + ' events recorded'
    if (data.eventsSince != null) note += ' since ' + fmtTime(data.eventsSince)
    if (data.eventsDropped) note += ' (' + data.eventsDropped + ' older ones dropped)'
    if (shown.length < data.events.length) note += '; the newest ' + shown.length + ' listed'
    document.getElementById('events-note').textContent = note + '.'
    table(
      document.getElementById('events'),
      ['event', 'time', ''],
      shown.map(function (e) {
        return { cls: 't-' + e.type, cells: [e.type, fmtTime(e.time), eventText(e)] }
      }),
    )

    var kids = data.children
    document.getElementById('children-box').hidden = kids.length === 0
    var withCmd = kids.some(function (c) {
      return c.cmdline != null
    })
    document.getElementById('children-note').textContent =
      kids.length + ' watched in the newest sample' + (withCmd ? '.' : '; command lines left out.')
    table(
      document.getElementById('children'),
      ['pid', 'ppid', 'command', 'RSS'].concat(withCmd ? ['command line'] : []),
      kids.map(function (c) {
        var cells = [c.pid, c.ppid, c.comm, { text: fmtBytes(c.rss), cls: 'num' }]
        if (withCmd) cells.push({ text: c.cmdline || '', cls: 'mono' })
        return { cells: cells }
      }),
    )
  }

  // ---------------------------------------------------------------------------------------------
  // Chart

  function seriesKeys() {
    return Object.keys(SERIES).filter(function (k) {
      return Array.isArray(data.series[k])
    })
  }

  function plotData() {
    var t = data.series.time
    var xs = new Array(t.length)
    for (var i = 0; i < t.length; i++) xs[i] = t[i] / 1000
    return [xs].concat(
      chartKeys.map(function (k) {
        return data.series[k]
      }),
    )
  }

  function colMax(k) {
    var col = data.series[k] || []
    var max = 0
    for (var i = 0; i < col.length; i++) if (col[i] != null && col[i] > max) max = col[i]
    return max
  }

  // The cgroup may hold much more than this process (a shared or host cgroup): its curves would
  // flatten the process's own, so they start hidden when they are over 4x its tree RSS / RSS.
  function decideVisible() {
    var own = Math.max(colMax('rss'), colMax('treeRss'), colMax('pss'))
    chartKeys.forEach(function (k) {
      if (k in visible) return
      var isCgroup = k === 'cgroupUsage' || k === 'workingSet'
      visible[k] = !(isCgroup && own > 0 && colMax(k) > 4 * own)
    })
  }

  function dataMax() {
    var max = 0
    chartKeys.forEach(function (k) {
      if (!visible[k]) return
      var col = data.series[k]
      for (var i = 0; i < col.length; i++) if (col[i] != null && col[i] > max) max = col[i]
    })
    return max
  }

  // By default a line is in scale when it is within 3x the data's maximum: a 2 GiB limit over a
  // 60 MiB process would flatten the curves. Lines off scale are named in the key above.
  function linesInScale() {
    var max = dataMax()
    return data.lines.filter(function (l) {
      return scaleLines || l.bytes <= 3 * max
    })
  }

  function yRange(u, min, max) {
    var top = max
    linesInScale().forEach(function (l) {
      if (l.bytes > top) top = l.bytes
    })
    if (!(top > 0)) top = MIB
    return [0, top * 1.06]
  }

  // Binary steps for the byte axis: 1, 2, 4, 8... KiB, MiB, GiB.
  var BYTE_INCRS = []
  ;[1, KIB, MIB, GIB, 1024 * GIB].forEach(function (unit) {
    ;[1, 2, 4, 8, 16, 32, 64, 128, 256, 512].forEach(function (m) {
      BYTE_INCRS.push(unit * m)
    })
  })

  function px(u, v) {
    return Math.round(u.valToPos(v, 'x', true))
  }

  function py(u, v) {
    return Math.round(u.valToPos(v, 'y', true))
  }

  function drawLeaks(u) {
    var ctx = u.ctx
    var b = u.bbox
    var xMax = u.scales.x.max
    ctx.save()
    ctx.beginPath()
    ctx.rect(b.left, b.top, b.width, b.height)
    ctx.clip()
    data.leaks.forEach(function (e) {
      var x0 = px(u, e.start / 1000)
      var x1 = px(u, e.end != null ? e.end / 1000 : xMax)
      var xd = px(u, e.detected / 1000)
      if (x1 < b.left || x0 > b.left + b.width) return
      ctx.fillStyle = LEAK_FILL
      ctx.fillRect(x0, b.top, Math.max(1, x1 - x0), b.height)
      ctx.strokeStyle = LEAK_EDGE
      ctx.lineWidth = 1 * devicePixelRatio
      ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio])
      ctx.beginPath()
      ctx.moveTo(xd + 0.5, b.top)
      ctx.lineTo(xd + 0.5, b.top + b.height)
      ctx.stroke()
      ctx.setLineDash([])
      ctx.fillStyle = '#991b1b'
      ctx.font = 12 * devicePixelRatio + 'px system-ui, sans-serif'
      ctx.textAlign = 'left'
      ctx.textBaseline = 'top'
      var label = 'leak ' + fmtSlope(e.slopeBytesPerSec) + ' · ' + e.suspect
      var tx = Math.max(
        b.left + 4,
        Math.min(x0 + 4, b.left + b.width - ctx.measureText(label).width - 4),
      )
      ctx.fillText(label, tx, b.top + 4 * devicePixelRatio)
    })
    ctx.restore()
  }

  function lineLabel(l) {
    var what = [l.metric, l.percent != null ? l.percent + '% of limit' : null].filter(Boolean)
    return l.name + (what.length ? ' (' + what.join(', ') + ')' : '') + ' ' + fmtBytes(l.bytes)
  }

  function offScaleLines() {
    var max = chart && chart.scales.y.max
    if (max == null) return []
    return data.lines.filter(function (l) {
      return l.bytes > max
    })
  }

  function drawLines(u) {
    var ctx = u.ctx
    var b = u.bbox
    var dpr = devicePixelRatio
    var inScale = linesInScale()
    ctx.save()
    ctx.font = 11 * dpr + 'px system-ui, sans-serif'
    data.lines.forEach(function (l) {
      var style = LINE_STYLE[l.kind] || LINE_STYLE.threshold
      if (inScale.indexOf(l) < 0 || l.bytes > u.scales.y.max) return
      var y = py(u, l.bytes) + 0.5
      ctx.strokeStyle = style.stroke
      ctx.lineWidth = style.width * dpr
      ctx.setLineDash(
        style.dash.map(function (d) {
          return d * dpr
        }),
      )
      ctx.beginPath()
      ctx.moveTo(b.left, y)
      ctx.lineTo(b.left + b.width, y)
      ctx.stroke()
      ctx.setLineDash([])
      ctx.fillStyle = style.stroke
      ctx.textAlign = 'left'
      ctx.textBaseline = 'bottom'
      var text = lineLabel(l)
      var tw = ctx.measureText(text).width
      var tx = b.left + b.width - tw - 4 * dpr
      // A pale backing keeps the label readable where a series crosses it.
      ctx.fillStyle = 'rgba(255, 255, 255, 0.8)'
      ctx.fillRect(tx - 2 * dpr, y - 15 * dpr, tw + 4 * dpr, 13 * dpr)
      ctx.fillStyle = style.stroke
      ctx.fillText(text, tx, y - 2 * dpr)
    })
    ctx.restore()
  }

  function drawMarkers(u) {
    var ctx = u.ctx
    var b = u.bbox
    var dpr = devicePixelRatio
    var xMin = u.scales.x.min
    var xMax = u.scales.x.max
    markers = []
    ctx.save()
    ctx.beginPath()
    ctx.rect(b.left, b.top - 8 * dpr, b.width, b.height + 8 * dpr)
    ctx.clip()
    data.events.forEach(function (e) {
      var t = e.time / 1000
      if (t < xMin || t > xMax) return
      var x = px(u, t)
      var y
      if (e.type === 'threshold') {
        y = py(u, Math.min(e.value, u.scales.y.max))
        ctx.fillStyle = e.direction === 'up' ? '#d97706' : '#16a34a'
        ctx.strokeStyle = '#fff'
        ctx.lineWidth = 1.5 * dpr
        var r = 5 * dpr
        ctx.beginPath()
        ctx.moveTo(x, y - r)
        ctx.lineTo(x + r, y)
        ctx.lineTo(x, y + r)
        ctx.lineTo(x - r, y)
        ctx.closePath()
        ctx.fill()
        ctx.stroke()
      } else if (e.type === 'child') {
        y = b.top + b.height
        var h = 8 * dpr
        ctx.fillStyle = e.change === 'spawn' ? '#7c3aed' : '#9ca3af'
        ctx.beginPath()
        if (e.change === 'spawn') {
          ctx.moveTo(x, y - h)
          ctx.lineTo(x + h * 0.6, y)
          ctx.lineTo(x - h * 0.6, y)
        } else {
          ctx.moveTo(x, y)
          ctx.lineTo(x + h * 0.6, y - h)
          ctx.lineTo(x - h * 0.6, y - h)
        }
        ctx.closePath()
        ctx.fill()
        y -= h / 2
      } else if (e.type === 'oom') {
        ctx.strokeStyle = '#dc2626'
        ctx.lineWidth = 2 * dpr
        ctx.beginPath()
        ctx.moveTo(x, b.top)
        ctx.lineTo(x, b.top + b.height)
        ctx.stroke()
        y = b.top + 10 * dpr
      } else {
        return
      }
      markers.push({
        x: x / dpr,
        y: y / dpr,
        text: e.type + ' · ' + fmtClock(e.time) + '\n' + eventText(e),
      })
    })
    ctx.restore()
  }

  function onCursor(u) {
    var tip = document.getElementById('tip')
    var left = u.cursor.left
    var top = u.cursor.top
    if (left == null || left < 0) {
      tip.hidden = true
      return
    }
    // Marker positions are relative to the canvas; the cursor's to the plot area.
    var bx = u.bbox.left / devicePixelRatio
    var by = u.bbox.top / devicePixelRatio
    var best = null
    var bestD = 64
    markers.forEach(function (m) {
      var dx = m.x - bx - left
      var dy = m.y - by - top
      var d = dx * dx + dy * dy
      if (d < bestD) {
        bestD = d
        best = m
      }
    })
    if (!best) {
      tip.hidden = true
      return
    }
    tip.textContent = best.text
    var over = u.over.getBoundingClientRect()
    var box = tip.parentNode.getBoundingClientRect()
    tip.style.left = over.left - box.left + left + 12 + 'px'
    tip.style.top = over.top - box.top + top + 12 + 'px'
    tip.hidden = false
  }

  function markRendered() {
    if (rendered) return
    rendered = true
    window.memsentryRenderedMs = performance.now()
    document.documentElement.setAttribute('data-rendered', 'true')
  }

  function chartWidth() {
    return Math.max(360, document.getElementById('chart').parentNode.clientWidth)
  }

  function renderKey() {
    var key = document.getElementById('key')
    key.textContent = ''
    var items = []
    if (data.leaks.length) items.push([LEAK_FILL, 'leak episode'])
    data.lines.forEach(function (l) {
      var name = { limit: 'limit', high: 'memory.high', threshold: 'threshold line' }[l.kind]
      if (!items.some((i) => i[1] === name)) items.push([LINE_STYLE[l.kind].stroke, name])
    })
    if (data.events.some((e) => e.type === 'threshold'))
      items.push(['#d97706', '◆ threshold crossed'])
    if (data.events.some((e) => e.type === 'child')) items.push(['#7c3aed', '▲▼ child spawn/exit'])
    if (data.events.some((e) => e.type === 'oom')) items.push(['#dc2626', 'OOM kill'])
    var off = offScaleLines()
    if (off.length) {
      items.push(['transparent', '↑ off scale: ' + off.map(lineLabel).join(', ')])
    }
    var hidden = chartKeys.filter(function (k) {
      return !visible[k]
    })
    if (hidden.length) {
      items.push([
        'transparent',
        hidden
          .map(function (k) {
            return SERIES[k].label
          })
          .join(', ') +
          ' hidden (the cgroup holds more than this process): click the legend to show',
      ])
    }
    items.forEach(function (it) {
      var sw = el('i')
      sw.style.background = it[0]
      key.appendChild(el('span', null, [sw, document.createTextNode(it[1])]))
    })
  }

  function buildChart() {
    var host = document.getElementById('chart')
    if (chart) {
      chart.destroy()
      chart = null
    }
    host.textContent = ''
    chartKeys = seriesKeys()
    var empty = data.series.time.length === 0 || chartKeys.length === 0
    document.getElementById('empty').hidden = !empty
    if (empty) {
      markRendered()
      return
    }
    decideVisible()
    if (scaleLines === null) {
      var max = dataMax()
      scaleLines = data.lines.length > 0 && data.lines.every((l) => l.bytes <= 3 * max)
      document.getElementById('scale-lines').checked = scaleLines
    }
    var opts = {
      width: chartWidth(),
      height: 440,
      series: [{}].concat(
        chartKeys.map(function (k) {
          var s = SERIES[k]
          return {
            label: s.label,
            show: visible[k],
            stroke: s.stroke,
            width: s.width,
            spanGaps: false,
            points: { show: false },
            value: function (u, v) {
              return fmtBytes(v)
            },
          }
        }),
      ),
      scales: { y: { range: yRange } },
      axes: [
        {},
        {
          size: 76,
          incrs: BYTE_INCRS,
          values: function (u, splits) {
            return splits.map(fmtAxisBytes)
          },
        },
      ],
      cursor: { drag: { x: true, y: false } },
      hooks: {
        drawClear: [drawLeaks],
        draw: [drawLines, drawMarkers, markRendered],
        setCursor: [onCursor],
        setSeries: [
          function (u, i) {
            if (i != null && i > 0) visible[chartKeys[i - 1]] = u.series[i].show
          },
        ],
        setScale: [
          function (u, key) {
            if (key === 'y' && chart) renderKey()
          },
        ],
        setSelect: [
          function (u) {
            if (u.select.width > 0) zoomed = true
          },
        ],
      },
    }
    chart = new uPlot(opts, plotData(), host)
    // uPlot zooms out on a double click; follow the newest points again from then on.
    chart.over.addEventListener('dblclick', function () {
      zoomed = false
    })
  }

  // ---------------------------------------------------------------------------------------------
  // Live updates

  function merge(update) {
    var n = update.series.time.length
    var sameKeys =
      Object.keys(update.series).every(function (k) {
        return k in data.series
      }) || n === 0
    var keys = Object.keys(data.series)
    keys.forEach(function (k) {
      var add = update.series[k] || new Array(n).fill(null)
      data.series[k] = data.series[k].concat(add)
    })
    Object.keys(update.series).forEach(function (k) {
      if (!(k in data.series)) {
        var before = data.series.time.length - n
        data.series[k] = new Array(before).fill(null).concat(update.series[k])
      }
    })
    var cap = (data.sentry && data.sentry.historySize) || 100000
    var extra = data.series.time.length - cap
    if (extra > 0) {
      Object.keys(data.series).forEach(function (k) {
        data.series[k] = data.series[k].slice(extra)
      })
    }
    var keep = ['title', 'generatedAt', 'process', 'sentry', 'latest', 'children', 'lines', 'leaks']
    keep = keep.concat(['events', 'eventsSince', 'eventsDropped'])
    keep.forEach(function (k) {
      data[k] = update[k]
    })
    return sameKeys
  }

  function setStatus(ok, text) {
    var s = document.getElementById('status')
    s.hidden = false
    s.className = 'status ' + (ok ? 'live' : 'down')
    s.textContent = text
  }

  function poll() {
    var t = data.series.time
    var since = t.length ? t[t.length - 1] : 0
    var url = location.pathname.replace(/\/+$/, '') + '/data.json?since=' + since
    fetch(url, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status)
        return res.json()
      })
      .then(function (update) {
        var sameKeys = merge(update)
        renderAll(!sameKeys || !chart)
        setStatus(
          true,
          'live · ' + data.series.time.length + ' samples · updated ' + fmtClock(Date.now()),
        )
      })
      .catch(function (err) {
        setStatus(false, 'not updating: ' + err.message + ' · retrying')
      })
      .then(function () {
        setTimeout(poll, data.live.pollMs)
      })
  }

  function renderAll(rebuild) {
    renderHeader()
    renderTrigger()
    renderFigures()
    renderTables()
    if (rebuild) buildChart()
    else chart.setData(plotData(), !zoomed)
    renderKey()
  }

  document.getElementById('scale-lines').addEventListener('change', function (ev) {
    scaleLines = ev.target.checked
    // setData re-ranges the y scale through yRange, which reads scaleLines.
    if (chart) chart.setData(plotData(), !zoomed)
  })
  var resizeTimer = null
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer)
    resizeTimer = setTimeout(function () {
      if (chart) chart.setSize({ width: chartWidth(), height: 440 })
    }, 100)
  })

  renderAll(true)
  if (data.live) {
    setStatus(true, 'live · ' + data.series.time.length + ' samples')
    setTimeout(poll, data.live.pollMs)
  }
})()
