-- wrk script of scripts/bench: counts every answer whose status is not 2xx (wrk's own "Non-2xx or 3xx"
-- count leaves 3xx out) and every value of the front door's X-Cache-Status header, and at the end prints
-- one line, "WRK_REPORT {json}", with the run's totals and its latency percentiles in microseconds, so
-- that scripts/bench reads numbers rather than wrk's prose.
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    non_2xx = 0
    cache_statuses = {}
end

function response(status, headers, body)
    if status < 200 or status > 299 then
        non_2xx = non_2xx + 1
    end
    local cache_status = headers["X-Cache-Status"] or "none"
    cache_statuses[cache_status] = (cache_statuses[cache_status] or 0) + 1
end

function done(summary, latency, requests)
    local non_2xx_total = 0
    local cache_totals = {}
    for _, thread in ipairs(threads) do
        non_2xx_total = non_2xx_total + thread:get("non_2xx")
        for name, count in pairs(thread:get("cache_statuses")) do
            cache_totals[name] = (cache_totals[name] or 0) + count
        end
    end
    local cache_json = {}
    for name, count in pairs(cache_totals) do
        table.insert(cache_json, string.format('"%s": %d', name, count))
    end
    local errors = summary.errors
    io.write(string.format(
        'WRK_REPORT {"requests": %d, "duration_us": %d, "bytes": %d, "non_2xx": %d, "cache_status": {%s}, '
            .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
            .. '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "p99.9": %d, "max": %d}}\n',
        summary.requests, summary.duration, summary.bytes, non_2xx_total, table.concat(cache_json, ", "),
        errors.connect, errors.read, errors.write, errors.timeout,
        latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max))
end
