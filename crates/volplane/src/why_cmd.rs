//! `volplane why KIND/NAME`: why a claim is Pending, a PV Released or Failed, a snapshot not
//! ready, or a deletion stuck — in words, from the API's state (see
//! `volplane_controllers::why`).

use std::path::PathBuf;

use anyhow::Context as _;
use volplane_controllers::why::{Target, explain};

/// Flags of `volplane why`.
#[derive(clap::Args, Debug, Clone)]
pub struct WhyArgs {
    /// `pvc/NAME`, `pv/NAME` or `volumesnapshot/NAME` (kubectl's spellings work).
    pub object: String,
    /// The namespace of a claim or snapshot.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// The kubeconfig of the API server.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
}

/// Prints the explanation.
pub async fn run(args: WhyArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.object, &args.namespace)?;
    let client = crate::controller_manager_cmd::client_from(&args.kubeconfig).await?;
    let explanation = explain(&client, &target)
        .await
        .with_context(|| format!("explaining {}", args.object))?;
    print!("{explanation}");
    Ok(())
}
