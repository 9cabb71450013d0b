defmodule Mix.Tasks.Compile.ElixirScopeNif do
  @moduledoc """
  Builds ElixirScope's C core with `make`, against the headers of the OTP that runs
  `mix compile`, into `priv/otp<release>/elixir_scope_nif.so` (one NIF per OTP release,
  loaded by `ElixirScope.Native` from the one of the running OTP).

  hex.pm packages such as `elixir_make` are not assumed, so the project carries this
  small compiler of its own. It runs for ElixirScope itself and for any application
  that depends on it (`{:elixir_scope, path: ...}` or git), as part of `mix compile`.
  """
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    root = Path.dirname(Mix.Project.project_file())

    args = [
      "--no-print-directory",
      "-C",
      root,
      "nif",
      "ERL_ROOT=#{:code.root_dir()}",
      "OTP_RELEASE=#{System.otp_release()}"
    ]

    case System.cmd("make", args, stderr_to_stdout: true) do
      {output, 0} ->
        if output =~ "cc", do: Mix.shell().info(String.trim(output))
        {:ok, []}

      {output, status} ->
        Mix.shell().error(output)

        Mix.raise(
          "building the ElixirScope NIF failed (make exited with #{status}); " <>
            "run `make setup` in #{root} to install the C toolchain and libraries"
        )
    end
  end
end

defmodule ElixirScope.MixProject do
  use Mix.Project

  def project do
    [
      app: :elixir_scope,
      version: "0.1.0",
      elixir: "~> 1.14",
      compilers: [:elixir_scope_nif | Mix.compilers()],
      elixirc_paths: elixirc_paths(Mix.env()),
      # One _build per OTP release (as priv/otp<release>/ holds one NIF per release):
      # beams and NIFs built by one OTP are never loaded by another.
      build_path: "_build/otp#{System.otp_release()}",
      start_permanent: Mix.env() == :prod,
      deps: [],
      # OTP's web server, for the MCP server: loaded when that starts, never at boot.
      xref: [exclude: [:inets, :httpd_util, :httpc]],
      description: "Introspection and time-travel debugging for Elixir, with a C core.",
      package: [licenses: ["MIT"]]
    ]
  end

  # ElixirScope starts no process when the application boots: it costs nothing until
  # ElixirScope.setup/1 or ElixirScope.TraceDB.start_link/1 is called. Since Elixir
  # 1.15 Mix keeps on the code path only the applications a project declares: :inets
  # is OTP's web server (the MCP server's, and its httpd.hrl at compile time). The
  # tests also use :httpc (which needs :public_key on OTP 27) and :dbg (:runtime_tools).
  def application do
    [extra_applications: [:logger, :crypto, :inets] ++ test_applications(Mix.env())]
  end

  defp test_applications(:test), do: [:public_key, :runtime_tools]
  defp test_applications(_), do: []

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]
end
