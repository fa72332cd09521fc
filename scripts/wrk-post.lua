-- wrk script of scripts/bench --held-posts: POST /Post.action as the app's own form, with a new title on every
-- request, counted and reported by scripts/wrk-report.lua (its path in WRK_REPORT_SCRIPT). A post is answered
-- 302, so here "non_2xx" counts every answer that is not 302.
dofile(os.getenv("WRK_REPORT_SCRIPT"))

local report_setup = setup
local thread_count = 0
function setup(thread)
    report_setup(thread)
    thread_count = thread_count + 1
    thread:set("thread_number", thread_count)
end

local posted = 0
function request()
    posted = posted + 1
    local body = string.format("title=bench-%d-%d-%d&body=steady+state+post", os.time(), thread_number, posted)
    return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end

function response(status, headers, body)
    if status ~= 302 then
        non_2xx = non_2xx + 1
    end
    local cache_status = headers["X-Cache-Status"] or "none"
    cache_statuses[cache_status] = (cache_statuses[cache_status] or 0) + 1
end
