// Beyond the notes: a generic function spawns a task that awaits a trait's
// async fn. Nothing says that future is Send, so tokio::spawn refuses it.
// It does not compile; the book shows the error.
use std::sync::Arc;

trait Lookup {
    async fn look_up(&self, name: &str) -> Option<String>;
}

fn spawn_lookup<L: Lookup + Send + Sync + 'static>(backend: Arc<L>) {
    tokio::spawn(async move {
        println!("{:?}", backend.look_up("ada").await);
    });
}

struct Table;

impl Lookup for Table {
    async fn look_up(&self, name: &str) -> Option<String> {
        (name == "ada").then(|| "Ada Lovelace".to_string())
    }
}

#[tokio::main]
async fn main() {
    spawn_lookup(Arc::new(Table));
}
