defmodule Mix.Tasks.Compile.ElixirScopeNif do
  @moduledoc """
  Builds ElixirScope's C core (`priv/elixir_scope_nif.so`) with `make`.

  hex.pm packages such as `elixir_make` are not assumed, so the project carries this
  small compiler of its own. It runs for ElixirScope itself and for any application
  that depends on it (`{:elixir_scope, path: ...}` or git), as part of `mix compile`.
  """
  use Mix.Task.Compiler

  @impl true
  def run(_args) do
    root = Path.dirname(Mix.Project.project_file())

    case System.cmd("make", ["--no-print-directory", "-C", root, "nif"], stderr_to_stdout: true) do
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
      start_permanent: Mix.env() == :prod,
      deps: [],
      # OTP's web server, for the MCP server: loaded when that starts, never at boot.
      xref: [exclude: [:inets, :httpd_util, :httpc]],
      description: "Introspection and time-travel debugging for Elixir, with a C core.",
      package: [licenses: ["MIT"]]
    ]
  end

  # Nothing is started when the application boots: ElixirScope costs nothing until
  # ElixirScope.setup/1 or ElixirScope.TraceDB.start_link/1 is called.
  def application do
    [extra_applications: [:logger, :crypto]]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]
end
