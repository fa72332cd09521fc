-- Request counts for the stats page (stats.js): every request the front door answers, by status class, cache
-- status and shield refusal reason, in a shared dictionary (shared by the workers, kept across reloads).
--
-- Why not from the stats log, as before: at 10,000 req/s the log held 100,000 lines per health-check interval,
-- and folding them in njs blocked one nginx worker for more than a second every 10 s, which showed as p99
-- latencies above 1 s at the front door (docs/benchmarks.md). Two increments in the log phase cost
-- microseconds; the stats log now keeps only the requests that went to a tier (what the per-server counts,
-- failures and failovers need), which the micro-cache keeps to a few per second.
local counts = ngx.shared.request_counts

local request_counts = {}

-- log_by_lua at the front door's server level: once per client request, after its answer.
function request_counts.count()
    local var = ngx.var
    if var.uri == "/healthz" then
        return   -- the container's health check, not a client (it has no access log line either)
    end
    counts:incr("status " .. string.sub(var.status, 1, 1) .. "xx", 1, 0)
    local cache = var.upstream_cache_status
    if cache and cache ~= "" then
        counts:incr("cache " .. cache, 1, 0)
    end
    local reason = var.shield_reason
    if reason and reason ~= "" then
        counts:incr("shield " .. reason, 1, 0)
    end
end

-- content_by_lua of the stats server's internal /_counts: "kind key count" lines for stats.js.
function request_counts.report()
    for _, key in ipairs(counts:get_keys(0)) do
        ngx.say(key, " ", counts:get(key) or 0)
    end
end

return request_counts
