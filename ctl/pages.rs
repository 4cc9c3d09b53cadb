//! Listing through the API's pages: every list verb's `--limit` and `--all`.

use std::future::Future;

use crate::client::ClientError;

/// Items a list prints unless told otherwise.
const DEFAULT_LIMIT: usize = 100;
/// The API's largest page.
const MAX_PAGE: usize = 1000;

/// How much of a list to print.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct PageArgs {
    /// Items to list [default: 100].
    #[arg(long)]
    pub limit: Option<usize>,
    /// List every item, however many pages that takes.
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,
}

/// Fetches pages with `fetch(page_token, page_size)` until the limit or the last page; says on
/// stderr when more items are left.
pub async fn collect<T, F, Fut>(args: PageArgs, mut fetch: F) -> Result<Vec<T>, ClientError>
where
    F: FnMut(String, i32) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), ClientError>>,
{
    let want = if args.all {
        usize::MAX
    } else {
        args.limit.unwrap_or(DEFAULT_LIMIT)
    };
    let mut items = Vec::new();
    let mut token = String::new();
    while items.len() < want {
        let size = (want - items.len()).min(MAX_PAGE) as i32;
        let (page, next) = fetch(token, size).await?;
        items.extend(page);
        if next.is_empty() {
            return Ok(items);
        }
        token = next;
    }
    eprintln!("(more items: raise --limit or pass --all)");
    Ok(items)
}
