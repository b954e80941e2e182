//! The embedded asset table: every file under `src/ui/web/`, with its
//! URL path and content type. Adding a file means adding one line here
//! (the `include_bytes!` makes a missing file a compile error).

/// One file compiled into the binary.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// Page paths of the single-page app: each answers `index.html`.
pub const PAGES: &[&str] = &[
    "login",
    "overview",
    "tail",
    "explore",
    "endpoints",
    "consumers",
    "alerts",
    "settings",
];

const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($path:literal, $ty:expr) => {
        Asset {
            path: $path,
            content_type: $ty,
            bytes: include_bytes!(concat!("web", $path)),
        }
    };
}

pub const ASSETS: &[Asset] = &[
    asset!("/index.html", "text/html; charset=utf-8"),
    asset!("/assets/app.css", "text/css; charset=utf-8"),
    asset!("/assets/favicon.svg", "image/svg+xml"),
    asset!("/assets/app.js", JS),
    asset!("/assets/api.js", JS),
    asset!("/assets/live.js", JS),
    asset!("/assets/chart.js", JS),
    asset!("/assets/dom.js", JS),
    asset!("/assets/pages/login.js", JS),
    asset!("/assets/pages/overview.js", JS),
    asset!("/assets/pages/tail.js", JS),
    asset!("/assets/pages/explore.js", JS),
    asset!("/assets/pages/endpoints.js", JS),
    asset!("/assets/pages/consumers.js", JS),
    asset!("/assets/pages/alerts.js", JS),
    asset!("/assets/pages/settings.js", JS),
];
