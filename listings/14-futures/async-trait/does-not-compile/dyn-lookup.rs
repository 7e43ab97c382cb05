// Beyond the notes: a trait with an async fn, used as `dyn`. It does not
// compile; the book shows the error.
trait Lookup {
    async fn look_up(&self, name: &str) -> Option<String>;
}

struct Table;

impl Lookup for Table {
    async fn look_up(&self, name: &str) -> Option<String> {
        (name == "ada").then(|| "Ada Lovelace".to_string())
    }
}

#[tokio::main]
async fn main() {
    let backends: Vec<Box<dyn Lookup>> = vec![Box::new(Table)];
    for backend in &backends {
        println!("{:?}", backend.look_up("ada").await);
    }
}
