using Ddpm.Native;

namespace Ddpm.Runtime.Tests.Native;

public class ThreadPolicyTests
{
    private static Func<string, string?> Variables(params (string Name, string Value)[] set) =>
        name => set.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void Outside_MPI_nothing_is_set()
    {
        Assert.Empty(ThreadPolicy.Settings(Variables(), cores: 2));
        Assert.Empty(ThreadPolicy.Settings(Variables(("OMP_WAIT_POLICY", "ACTIVE")), cores: 2));
    }

    [Theory]
    [InlineData("2", 2, "1")]
    [InlineData("2", 8, "4")]
    [InlineData("3", 8, "2")]
    [InlineData("4", 2, "1")] // more ranks than cores: one thread each, never zero
    public void MPI_ranks_on_one_node_split_its_cores(string localRanks, int cores, string threads)
    {
        var settings = ThreadPolicy.Settings(Variables(("OMPI_COMM_WORLD_LOCAL_SIZE", localRanks)), cores);
        Assert.Equal(new Dictionary<string, string> { ["OMP_NUM_THREADS"] = threads }, settings);
    }

    [Theory]
    [InlineData("1")]   // one rank on the node: all of its cores
    [InlineData("")]
    [InlineData("x")]
    public void One_rank_or_no_launcher_keeps_libtorchs_thread_count(string localRanks)
    {
        Assert.DoesNotContain("OMP_NUM_THREADS", ThreadPolicy.Settings(Variables(("OMPI_COMM_WORLD_LOCAL_SIZE", localRanks)), cores: 8).Keys);
    }

    [Fact]
    public void A_thread_count_the_user_set_is_kept_under_MPI()
    {
        var settings = ThreadPolicy.Settings(Variables(("OMPI_COMM_WORLD_LOCAL_SIZE", "2"), ("OMP_NUM_THREADS", "3")), cores: 8);
        Assert.DoesNotContain("OMP_NUM_THREADS", settings.Keys);
    }
}
