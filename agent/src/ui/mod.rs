//! The embedded web UI: static assets compiled into the binary and served at `/`.
//! Works offline; no separate server or build step.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file: `(name, content type, bytes of assets/<name>)`.
macro_rules! asset {
    ($name:literal, $mime:literal) => {
        ($name, $mime, include_bytes!(concat!("assets/", $name)))
    };
}

/// (path under `/ui/`, content type, bytes) for every embedded file. `index.html` is also `/`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("prefetch.js", "text/javascript; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("util.js", "text/javascript; charset=utf-8"),
    asset!("traces.js", "text/javascript; charset=utf-8"),
    asset!("timeline.js", "text/javascript; charset=utf-8"),
    asset!("details.js", "text/javascript; charset=utf-8"),
    asset!("groups.js", "text/javascript; charset=utf-8"),
    asset!("flows.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

fn asset(path: &str) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, mime, bytes)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Routes for `/` and `/ui/{file}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { asset("index.html") }))
        .route(
            "/ui/{*file}",
            get(|Path(file): Path<String>| async move { asset(&file) }),
        )
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// A file added to `assets/` but not to [`ASSETS`] would be a 404 (and a blank page when a
    /// module imports it); the README documents every asset, so the two lists must match.
    #[test]
    fn every_asset_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui/assets");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("assets dir")
            .map(|entry| {
                entry
                    .expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS
            .iter()
            .map(|(name, _, _)| (*name).to_owned())
            .collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    /// Every `import … from './x.js'` in an embedded module names an embedded module.
    #[test]
    fn module_imports_resolve_to_embedded_assets() {
        for (name, _, bytes) in ASSETS.iter().filter(|(name, _, _)| name.ends_with(".js")) {
            let source = std::str::from_utf8(bytes).expect("utf-8 asset");
            for spec in source.split("from './").skip(1) {
                let target = spec.split('\'').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|(asset, _, _)| *asset == target),
                    "{name} imports ./{target}, which is not embedded"
                );
            }
        }
    }
}
