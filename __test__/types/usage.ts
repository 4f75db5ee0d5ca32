// Type-checked by `npm test` (tsc --noEmit): the README's usage must compile against index.d.ts.
import { MemorySentry, snapshot, rss, type Sample, type ThresholdEvent } from '../../index'

const sentry = new MemorySentry({
  intervalMs: 1000,
  historySize: 3600,
  children: 'tree',
  thresholds: [
    { name: 'warn', metric: 'rss', above: '600MiB', hysteresis: '16MiB' },
    { name: 'limit', metric: 'workingSet', above: '90%' },
  ],
  leak: { windowMs: 600_000, minSlope: '1MiB/min' },
  smaps: { everyN: 10 },
  heap: false,
})

sentry.on('threshold', (e: ThresholdEvent) => {
  const line: number = e.threshold
  const dir: 'up' | 'down' = e.direction
  void [line, dir, e.sample.rss]
})
sentry.on('sample', (s: Sample) => {
  const rssBytes: number | null = s.rss
  const limit: number | null | undefined = s.cgroup?.limit
  void [rssBytes, limit]
})
sentry.on('error', (err) => console.error(err.code, err.message))
sentry.on('leak-diagnosis', (d) => {
  const top = d.sites[0]
  if (top) console.log(`${top.functionName} (${top.url}:${top.line}) ${top.share}`, top.stack)
  const external: number | undefined = d.native?.growth.external?.bytes
  void [d.since, d.durationMs, d.samplingIntervalBytes, d.sampledBytes, d.suspect, external]
})
new MemorySentry({ leak: { diagnose: { durationMs: 30_000, samplingInterval: '256KiB' } } })
new MemorySentry({ leak: { diagnose: false } })

for (const t of sentry.thresholdStates()) {
  const active: boolean = t.active
  const value: number | null = t.value
  const pid: number | undefined = t.pid
  void [active, value, pid, t.name, t.metric]
}
const episode = sentry.leakEpisode
if (episode !== null) {
  const left: number | null = episode.msToLimit
  void [left, episode.since, episode.slopeBytesPerSec, episode.suspect]
}

const latest: Sample | null = sentry.latest
const fresh: Sample = sentry.snapshot()
const recent: Sample[] = sentry.history({ sinceMs: Date.now() - 60_000 })
const bytes: number = rss()
const once: Sample = snapshot({ smaps: true })
const dropped: number = sentry.stats().droppedEvents
const taken = sentry.options
const windowMs: number | undefined = taken.leak?.windowMs
const every: number = taken.smapsEveryN
void [latest, fresh, recent, bytes, once, dropped, windowMs, every, taken.thresholds[0]?.above]

sentry.stop().start().unref()
const closed: Promise<void> = sentry.close()
void closed

// @ts-expect-error: a wrong event name's listener type does not match.
sentry.on('threshold', (s: Sample) => s.rss)
// @ts-expect-error: intervalMs is a number.
new MemorySentry({ intervalMs: '1000' })
