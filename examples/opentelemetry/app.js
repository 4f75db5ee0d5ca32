'use strict'

// Sending memsentry's figures to an OpenTelemetry Collector (collector.yaml) over OTLP/HTTP.
// Preload memsentry/register as in examples/kubernetes/deployment.yaml and require this file
// first thing in the app. Needs @opentelemetry/api, @opentelemetry/sdk-metrics and
// @opentelemetry/exporter-metrics-otlp-http (not dependencies of memsentry).
//
//   OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=http://otel-collector:4318/v1/metrics \
//   NODE_OPTIONS='-r memsentry/register' node -r ./app.js server.js

const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics')
const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-http')
const { observe } = require('memsentry/otel')
const { sentry } = require('memsentry/register')

if (sentry) {
  const provider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter(), // the endpoint from OTEL_EXPORTER_OTLP_*
        exportIntervalMillis: 15_000,
      }),
    ],
  })
  observe(sentry, { meter: provider.getMeter('memsentry') })
}
