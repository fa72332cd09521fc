-- wrk script of `scripts/bench --session-flood`: every request asks for its path with a query string no
-- other request has (what bypassed the front door's micro-cache before the shield, one Jetty session each),
-- counts the answers by status, and prints one line, "WRK_REPORT {json}", with the totals.
local threads = {}
local counter = 0

function setup(thread)
    thread:set("id", #threads + 1)
    table.insert(threads, thread)
end

function init(args)
    statuses = {}
    prefix = wrk.path .. "?flood=" .. id .. "-"
end

function request()
    counter = counter + 1
    return wrk.format(nil, prefix .. counter)
end

function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
    local totals = {}
    for _, thread in ipairs(threads) do
        for status, count in pairs(thread:get("statuses")) do
            totals[tostring(status)] = (totals[tostring(status)] or 0) + count
        end
    end
    local parts = {}
    for status, count in pairs(totals) do
        table.insert(parts, string.format('"%s": %d', status, count))
    end
    io.write(string.format('WRK_REPORT {"requests": %d, "duration_us": %d, "socket_errors": %d, "statuses": {%s}}\n',
        summary.requests, summary.duration,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        table.concat(parts, ", ")))
end
