-- Held posts (docs/single-writer.md, "Held posts"): a POST /Post.action that arrives while no app writer
-- listens waits at the front door, for at most POST_HOLD_SECONDS counted from its arrival, and is then
-- delivered to whichever writer listens. Runs inside nginx (lua-nginx-module, Debian's libnginx-mod-http-lua).
--
-- Why a post is never applied twice. It is only ever sent again when no earlier attempt of it reached any
-- app at all, which the front door knows from two facts nginx records:
--   * Before a post is proxied, the writer's post gate is asked (a GET, no body). Waiting on the gate sends
--     nothing of the post anywhere.
--   * After a proxy attempt failed, $upstream_connect_time lists one value per server tried, and "-" for one
--     with which no connection was established ("keeps time spent on establishing a connection with the
--     upstream server", https://nginx.org/en/docs/http/ngx_http_upstream_module.html#var_upstream_connect_time;
--     nginx's "no live upstreams" tries no server and records "-" too). Only when every value is "-" did no
--     app accept a TCP connection, so no byte of the post can have reached one, and it is delivered again.
--     One established connection, even if nginx then failed to write to it, and the post gets the 503 page.
-- nginx itself never passes a POST on to another server once it was sent: proxy_next_upstream without
-- `non_idempotent` ("requests with a non-idempotent method (POST, LOCK, PATCH) are not passed to the next
-- server if a request has been sent to an upstream server",
-- https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_next_upstream).
--
-- lua-nginx-module semantics relied on (https://github.com/openresty/lua-nginx-module#nginx-api-for-lua, 0.10.23):
-- ngx.location.capture issues a subrequest and yields until it completes, forwarding the parent's body only for
-- PUT/POST (the gate is asked with GET, and its location drops the body anyway); ngx.sleep yields without
-- blocking the worker; ngx.req.start_time is the request's arrival, which internal redirects keep; ngx.exec to a
-- named location keeps the method and the request body already read, and aborts the current handler.
local held_posts = {}

-- How often a held post asks the gate again. The app balancer (app_balancer.lua) tries the addresses that
-- listened at its last probe first, so an ask costs a refused connection or two until the new writer listens.
local ASK_INTERVAL_SECONDS = 0.1
-- Deliveries of one post that may end with no connection before it gets the 503 page. Each one costs two
-- internal redirects (the error_page to @writer_unreachable, ngx.exec back to @writer), and nginx allows a
-- request ten (NGX_HTTP_MAX_URI_CHANGES); the gate makes a second one rare already.
local MOST_DELIVERIES = 3

-- The gate is a file the writer serves while it takes posts (docker/app/healthcheck): 200 open, 404 shut.
local GATE_OPEN, GATE_SHUT = ngx.HTTP_OK, ngx.HTTP_NOT_FOUND
-- What @writer answers with the posts-paused page (its error_page 401).
local POSTS_PAUSED = ngx.HTTP_UNAUTHORIZED

-- The post's deadline: its arrival (ngx.req.start_time, which internal redirects keep) plus the hold.
local function deadline()
    return ngx.req.start_time() + (tonumber(ngx.var.post_hold_seconds) or 0)
end

-- Access phase of @writer, after the shield accepted the form (so nothing refused is ever held). Asks the
-- writer's post gate (/_frontdoor/writer-gate) until a writer answers:
--   200 open: the post goes on to proxy_pass;
--   404 shut (its disk is below the floor or its journal blocked, issue 14): the posts-paused 503 at once —
--       a writer answered, and waiting would only hold the post in front of a full disk;
--   anything else (502: no app server accepted the connection; 504: none answered in time; a Jetty that is
--       still starting): no writer is ready; the post waits and asks again until its deadline, then gets the
--       failover 503.
function held_posts.wait_for_writer()
    local until_time = deadline()
    while true do
        local gate = ngx.location.capture("/_frontdoor/writer-gate", { method = ngx.HTTP_GET })
        if gate.status == GATE_OPEN then
            return
        end
        if gate.status == GATE_SHUT then
            return ngx.exit(POSTS_PAUSED)
        end
        local left = until_time - ngx.now()
        if left <= 0 then
            return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
        end
        ngx.sleep(math.min(ASK_INTERVAL_SECONDS, left))
        ngx.update_time()
    end
end

-- Whether no attempt of this post so far established a connection with any app server, and how many
-- proxy attempts there were ($upstream_addr separates those of internal redirects with " : ").
local function never_connected()
    local connect_times = ngx.var.upstream_connect_time or ""
    local attempts = select(2, (ngx.var.upstream_addr or ""):gsub(" : ", "")) + 1
    return not connect_times:find("[0-9]"), attempts
end

-- Content phase of @writer_unreachable, where @writer's 502 and 504 land. A post that never connected goes
-- back to @writer (whose gate wait holds it until a writer listens or its deadline passes); one that did
-- connect, or that is out of time or deliveries, gets the failover 503.
function held_posts.after_failed_delivery()
    local unsent, attempts = never_connected()
    if unsent and attempts < MOST_DELIVERIES and ngx.now() < deadline() then
        return ngx.exec("@writer")
    end
    return ngx.exit(ngx.HTTP_SERVICE_UNAVAILABLE)
end

return held_posts
