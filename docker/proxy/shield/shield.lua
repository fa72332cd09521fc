-- The front door's shield (docker/proxy/shield/shield-http.conf): refusals, counted per reason, and the
-- check of the one form the app takes. Runs inside nginx (lua-nginx-module, Debian's libnginx-mod-http-lua).
local shield = {}

-- One word per kind of refusal, in the order the stats page lists them, and the status each answers.
local STATUS = { method = 405, path = 404, query = 400, content_type = 400, form = 400 }
local REASONS = { "method", "path", "query", "content_type", "form" }
-- The only names POST /Post.action may carry, each at most once: the fields of the app's own form.
local FORM_NAMES = { title = true, body = true }

local refusals = ngx.shared.shield_refusals

-- Logs the reason (the access log's shield= field), counts it and answers with nginx's error page.
function shield.refuse(reason)
    ngx.var.shield_reason = reason
    local _, err = refusals:incr(reason, 1, 0)
    if err then
        ngx.log(ngx.WARN, "shield: cannot count a refusal (", reason, "): ", err)
    end
    return ngx.exit(STATUS[reason] or ngx.HTTP_BAD_REQUEST)
end

local function request_body()
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if body then
        return body
    end
    -- A body larger than client_body_buffer_size waits in a temp file (at most client_max_body_size).
    local path = ngx.req.get_body_file()
    if not path then
        return "" -- no body at all
    end
    local file, err = io.open(path, "rb")
    if not file then
        ngx.log(ngx.ERR, "shield: cannot read the buffered body ", path, ": ", err)
        return nil
    end
    body = file:read("*a")
    file:close()
    return body
end

-- Access phase of POST /Post.action. Names are decoded as the app server decodes them ('+' is a space,
-- %XX a byte); anything the app server would decode differently (%uXXXX) stays encoded here and so is no
-- allowed name. Empty pairs ("&&") carry no name for either.
function shield.check_form()
    local body = request_body()
    if not body then
        return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)
    end
    local seen = {}
    for pair in body:gmatch("[^&]+") do
        local name = ngx.unescape_uri((pair:match("^[^=]*"):gsub("+", " ")))
        if not FORM_NAMES[name] or seen[name] then
            return shield.refuse("form")
        end
        seen[name] = true
    end
end

-- The stats page's /shield: every reason with its count since nginx started.
function shield.report()
    local total = 0
    for _, reason in ipairs(REASONS) do
        local count = refusals:get(reason) or 0
        total = total + count
        ngx.say(reason, " ", count)
    end
    ngx.say("total ", total)
end

return shield
