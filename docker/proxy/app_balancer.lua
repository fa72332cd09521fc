-- The app tier's balancer (docs/single-writer.md, "Release hand-over (training)").
--
-- APP_SERVERS lists the addresses of both release slots, blue and green, whatever the release, so a release
-- never replaces the front door. Between releases one slot has no containers: on a Docker bridge a connect
-- to an address without a container is not refused, it waits for ARP until the connect timeout. And of the
-- slot that runs, only the writer listens; its standbys refuse. So the balancer must know who listens.
--
-- Worker 0 probes every address twice a second (a TCP connect, 250 ms at most) and writes the answer into the
-- shared dict app_peers. Each request tries the addresses that listened at the last probe first, with the
-- usual connect timeout, then the others in order, with a short one: a request pays for a silent address only
-- in the half second after a hand-over, before the probe has seen it. An address that failed a try is marked
-- silent at once, for every worker, until the next probe.
--
-- API: ngx.balancer of lua-resty-core 0.1.25 (set_current_peer, set_more_tries, set_timeouts, whose nil
-- arguments keep proxy_*_timeout), lib/ngx/balancer.md; `keepalive` after balancer_by_lua_block in the
-- upstream keeps the connection pool, as that page's synopsis shows.
local balancer = require "ngx.balancer"

local peers = ngx.shared.app_peers
local PROBE_INTERVAL_SECONDS = 0.5
local PROBE_TIMEOUT_MS = 250
local LISTENING_CONNECT_SECONDS = 1     -- proxy_connect_timeout's value: a live replica on the same network
local SILENT_CONNECT_SECONDS = 0.2      -- an address that did not listen at the last probe
local LISTENING = 1

local _M = {}
local servers = {}

-- A failed probe is the normal answer of a standby or an empty slot, so nginx.conf turns off cosockets' own error
-- lines (lua_socket_log_errors), which would log every silent address twice a second; a change is logged here.
local function probe(server)
    local socket = ngx.socket.tcp()
    socket:settimeout(PROBE_TIMEOUT_MS)
    local ok, err = socket:connect(server.host, server.port)
    if ok then
        socket:close()
    end
    local now = ok and LISTENING or 0
    local before = peers:get(server.key)
    peers:set(server.key, now)
    if before ~= nil and before ~= now then
        ngx.log(ngx.WARN, "app balancer: ", server.key, ok and " listens now" or (" stopped listening: " .. tostring(err)))
    end
end

local function probe_all(premature)
    if premature then
        return
    end
    local threads = {}
    for _, server in ipairs(servers) do
        threads[#threads + 1] = ngx.thread.spawn(probe, server)
    end
    for _, thread in ipairs(threads) do
        ngx.thread.wait(thread)
    end
end

-- init_worker_by_lua: `list` is APP_SERVERS as proxy-entrypoint checked it ({"172.30.81.20:8080", ...}).
function _M.start(list)
    servers = {}
    for _, address in ipairs(list) do
        local host, port = address:match("^([%d.]+):(%d+)$")
        servers[#servers + 1] = {host = host, port = tonumber(port), key = address}
    end
    if ngx.worker.id() == 0 then
        ngx.timer.at(0, probe_all)
        local ok, err = ngx.timer.every(PROBE_INTERVAL_SECONDS, probe_all)
        if not ok then
            ngx.log(ngx.ERR, "app balancer: cannot start the probe timer: ", err)
        end
    end
end

-- balancer_by_lua: called for the first try and again for each retry of the same request.
function _M.balance()
    local ctx = ngx.ctx
    local order = ctx.app_order
    if order == nil then
        order = {}
        for _, server in ipairs(servers) do
            if peers:get(server.key) == LISTENING then
                order[#order + 1] = server
            end
        end
        for _, server in ipairs(servers) do
            if peers:get(server.key) ~= LISTENING then
                order[#order + 1] = server
            end
        end
        ctx.app_order, ctx.app_try = order, 1
        if #order > 1 then
            balancer.set_more_tries(#order - 1)
        end
    else
        peers:set(order[ctx.app_try].key, 0)
        ctx.app_try = ctx.app_try + 1
    end
    local server = order[ctx.app_try]
    if server == nil then
        return ngx.exit(502)
    end
    local connect = peers:get(server.key) == LISTENING and LISTENING_CONNECT_SECONDS or SILENT_CONNECT_SECONDS
    balancer.set_timeouts(connect, nil, nil)
    local ok, err = balancer.set_current_peer(server.host, server.port)
    if not ok then
        ngx.log(ngx.ERR, "app balancer: cannot use ", server.key, ": ", err)
        return ngx.exit(502)
    end
end

return _M
