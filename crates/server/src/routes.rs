//! One table per folder for its HTTP routes: the router and the OpenAPI
//! document (`crate::openapi`) are both made from it, so a route cannot be served
//! without being documented.

/// One documented route.
#[derive(Clone, Copy, Debug)]
pub struct RouteDoc {
    /// `get`, `post`, `put`, `patch` or `delete`.
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// How a caller authenticates: `none`, `session` (Bearer session token),
    /// `grant` (grant in the path, plus the holder's session), `operator`
    /// (operator token), `oauth_client` (client credentials) or `link`
    /// (an account link's access token).
    pub auth: &'static str,
}

/// `route_table! { fn_name, DOCS_NAME; get "/path" => handler, "summary", "auth"; ... }`
/// defines `fn fn_name() -> Router<AppState>` and `const DOCS_NAME: &[RouteDoc]`.
macro_rules! route_table {
    ($fn_name:ident, $docs:ident; $( $method:ident $path:literal => $handler:expr, $summary:literal, $auth:literal; )*) => {
        pub fn $fn_name() -> axum::Router<crate::state::AppState> {
            axum::Router::new()
                $( .route($path, axum::routing::$method($handler)) )*
        }

        pub const $docs: &[crate::routes::RouteDoc] = &[
            $( crate::routes::RouteDoc {
                method: stringify!($method),
                path: $path,
                summary: $summary,
                auth: $auth,
            }, )*
        ];
    };
}
pub(crate) use route_table;
