// What a PromQL expression names: metric names and label names, read from the parse tree of
// Prometheus's own grammar (@prometheus-io/lezer-promql, the one its web UI uses), not by regex.
// Used to check that the Grafana dashboard and the alert rules name only what memsentry exports.
import { parser } from '@prometheus-io/lezer-promql'

/**
 * The metrics and labels `expr` names. Throws with the position when it does not parse.
 *
 * @returns {{ metrics: Set<string>, labels: Set<string> }}
 */
export function namesIn(expr) {
  const metrics = new Set()
  const labels = new Set()
  const errors = []
  const text = (n) => expr.slice(n.from, n.to)
  parser.parse(expr).iterate({
    enter(n) {
      if (n.type.isError) {
        errors.push(n.from)
        return
      }
      switch (n.type.name) {
        case 'Identifier':
          // The metric name of a selector (function and operator names are other node types).
          if (n.node.parent?.type.name === 'VectorSelector') metrics.add(text(n))
          break
        case 'LabelName':
          labels.add(text(n))
          break
        case 'QuotedLabelName':
          labels.add(JSON.parse(text(n)))
          break
        case 'UnquotedLabelMatcher': {
          // {__name__="foo"} names the metric foo.
          const name = n.node.getChild('LabelName')
          const value = n.node.getChild('StringLiteral')
          if (name && value && text(name) === '__name__') metrics.add(JSON.parse(text(value)))
          break
        }
      }
    },
  })
  if (errors.length > 0) {
    throw new Error(`PromQL does not parse at offset ${errors[0]}: ${expr}`)
  }
  labels.delete('__name__')
  return { metrics, labels }
}

// Grafana's variables, given the values the dashboard would give them for "All".
export const GRAFANA_VARIABLES = {
  job: '.*',
  instance: '.*',
  __rate_interval: '15s',
  __interval: '5s',
  __range: '1m',
}

/** Replaces $name, ${name} and [[name]] by `values[name]`; throws on an unknown variable. */
export function substituteVariables(expr, values = GRAFANA_VARIABLES) {
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (whole, a, b, c) => {
    const name = a ?? b ?? c
    if (!(name in values)) throw new Error(`unknown Grafana variable ${whole} in ${expr}`)
    return values[name]
  })
}

/**
 * Every PromQL query of a Grafana dashboard: panel targets (nested rows too), annotation
 * queries and templating queries (`label_values(selector, label)` is split into its selector and
 * its label). Each: { where, expr, legend?, label? }, with `expr` as written (variables in).
 */
export function dashboardQueries(dashboard) {
  const out = []
  const panels = (list, path) => {
    for (const [i, panel] of (list ?? []).entries()) {
      const where = `${path}[${i}] "${panel.title ?? ''}"`
      for (const target of panel.targets ?? []) {
        if (typeof target.expr === 'string') {
          out.push({
            where: `${where} ${target.refId ?? ''}`,
            expr: target.expr,
            legend: target.legendFormat,
          })
        }
      }
      panels(panel.panels, `${where}.panels`)
    }
  }
  panels(dashboard.panels, 'panels')
  for (const a of dashboard.annotations?.list ?? []) {
    if (typeof a.expr === 'string') {
      const legend = `${a.titleFormat ?? ''} ${a.textFormat ?? ''} ${a.tagKeys ?? ''}`
      out.push({ where: `annotation "${a.name}"`, expr: a.expr, legend })
    }
  }
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue
    const q = typeof v.query === 'string' ? v.query : v.query?.query
    const m = /^\s*label_values\(\s*(.*?)\s*,\s*(\w+)\s*\)\s*$/.exec(q ?? '')
    if (m) out.push({ where: `variable $${v.name}`, expr: m[1], label: m[2] })
    else if (q) out.push({ where: `variable $${v.name}`, expr: q })
  }
  return out
}

/** The `{{label}}` names in a Grafana legend format. */
export function legendLabels(legend) {
  return [...(legend ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1])
}
