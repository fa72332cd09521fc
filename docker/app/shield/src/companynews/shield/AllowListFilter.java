package companynews.shield;

import java.io.IOException;
import java.util.Collections;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

import javax.servlet.Filter;
import javax.servlet.FilterChain;
import javax.servlet.FilterConfig;
import javax.servlet.ServletContext;
import javax.servlet.ServletException;
import javax.servlet.ServletRequest;
import javax.servlet.ServletResponse;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;

/**
 * The app server's half of the shield (docs/security.md): admits only the requests companyNews exists
 * for, before Struts 2.1.8 can read a parameter name or a redirect: prefix as OGNL.
 *
 * <p>Installed through Jetty's defaults descriptor (webdefault.xml), whose filters come before the war's
 * own (Jetty's StandardDescriptorProcessor reads webdefault.xml, then WEB-INF/web.xml), so it runs
 * before Struts' dispatcher filter without a change to the war. The same allow-list as the front door's
 * (docker/proxy/shield), for requests that do not pass the door (production's load balancer):
 * <ul>
 * <li>paths, as sent (undecoded, path parameters included): /, /Read.action, /Post.action; else 404;</li>
 * <li>methods: GET and HEAD on those, POST on /Post.action only; else 405;</li>
 * <li>no query string, no Content-Type on a read, only application/x-www-form-urlencoded on the post;</li>
 * <li>parameter names: none on a read; title and body on the post, each at most once, and no name with a
 * character outside [A-Za-z0-9_]; else 400.</li>
 * </ul>
 */
public final class AllowListFilter implements Filter {

    private static final Set<String> NO_NAMES = Collections.emptySet();
    private static final Set<String> FORM_NAMES =
            Collections.unmodifiableSet(new HashSet<String>(java.util.Arrays.asList("title", "body")));
    private static final String POST_PATH = "/Post.action";
    /** Path as sent, to the parameter names a read of it may carry (none). */
    private static final Map<String, Set<String>> READ_PATHS = new HashMap<String, Set<String>>();
    static {
        READ_PATHS.put("/", NO_NAMES);
        READ_PATHS.put("/Read.action", NO_NAMES);
        READ_PATHS.put(POST_PATH, NO_NAMES);
    }
    private static final Pattern PARAMETER_NAME = Pattern.compile("[A-Za-z0-9_]+");
    private static final Pattern FORM_CONTENT_TYPE = Pattern.compile(
            "application/x-www-form-urlencoded\\s*(;\\s*charset=[A-Za-z0-9_-]+\\s*)?", Pattern.CASE_INSENSITIVE);
    private static final int LOGGED_URI_CHARS = 200;

    private ServletContext context;

    @Override
    public void init(FilterConfig config) {
        context = config.getServletContext();
    }

    @Override
    public void destroy() {
        context = null;
    }

    @Override
    public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
            throws IOException, ServletException {
        if (!(request instanceof HttpServletRequest) || !(response instanceof HttpServletResponse)) {
            throw new ServletException("the shield filter serves HTTP only");
        }
        HttpServletRequest http = (HttpServletRequest) request;
        HttpServletResponse answer = (HttpServletResponse) response;
        String reason = refusal(http);
        if (reason == null) {
            chain.doFilter(request, response);
            return;
        }
        log(reason, http);
        if ("method".equals(reason)) {
            answer.setHeader("Allow", POST_PATH.equals(http.getRequestURI()) ? "GET, HEAD, POST" : "GET, HEAD");
            answer.sendError(HttpServletResponse.SC_METHOD_NOT_ALLOWED);
        } else if ("path".equals(reason)) {
            answer.sendError(HttpServletResponse.SC_NOT_FOUND);
        } else {
            answer.sendError(HttpServletResponse.SC_BAD_REQUEST);
        }
    }

    /** Why the request is refused, in the front door's words (method, path, query, ...), or null. */
    static String refusal(HttpServletRequest request) {
        String path = request.getRequestURI();
        String method = request.getMethod();
        if (!READ_PATHS.containsKey(path)) {
            return "path";
        }
        Set<String> allowedNames;
        if ("GET".equals(method) || "HEAD".equals(method)) {
            allowedNames = READ_PATHS.get(path);
        } else if ("POST".equals(method) && POST_PATH.equals(path)) {
            allowedNames = FORM_NAMES;
        } else {
            return "method";
        }
        if (request.getQueryString() != null) {
            return "query";
        }
        if (!contentTypeAllowed(request, allowedNames == FORM_NAMES)) {
            return "content_type";
        }
        // Reads the urlencoded body of the post: the names Struts would see, after Jetty's decoding.
        Enumeration<String> names = request.getParameterNames();
        while (names.hasMoreElements()) {
            String name = names.nextElement();
            if (!PARAMETER_NAME.matcher(name).matches() || !allowedNames.contains(name)
                    || request.getParameterValues(name).length != 1) {
                return "form";
            }
        }
        return null;
    }

    /** A read has no Content-Type; the post has exactly one, a urlencoded form (Struts parses any
     *  request that says multipart/form-data with its multipart wrapper, and S2-045 hides OGNL there). */
    private static boolean contentTypeAllowed(HttpServletRequest request, boolean form) {
        Enumeration<String> values = request.getHeaders("Content-Type");
        if (!values.hasMoreElements()) {
            return !form;
        }
        String contentType = values.nextElement();
        return form && !values.hasMoreElements() && FORM_CONTENT_TYPE.matcher(contentType.trim()).matches();
    }

    /** One line per refusal; the URI cut short and stripped of control characters (no forged lines). */
    private void log(String reason, HttpServletRequest request) {
        String uri = request.getRequestURI();
        StringBuilder shown = new StringBuilder(Math.min(uri.length(), LOGGED_URI_CHARS));
        for (int i = 0; i < uri.length() && i < LOGGED_URI_CHARS; i++) {
            char c = uri.charAt(i);
            shown.append(c < 0x20 || c == 0x7f ? '?' : c);
        }
        context.log("shield: refused " + reason + " " + request.getMethod() + " " + shown);
    }
}
