exclude =
  if ElixirScope.Test.PhoenixApp.available?() do
    []
  else
    IO.puts(ElixirScope.Test.PhoenixApp.skip_reason())
    [:phoenix_app]
  end

ExUnit.start(exclude: exclude)
